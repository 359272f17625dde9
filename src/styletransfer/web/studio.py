"""The studio's state: how the server was started (:class:`Config`) and :class:`Studio`.

The studio holds the job store, the queue, the instant runner, the checks of a
new job, the cache of estimates and the count of open event streams; the
routes (:mod:`.routes`) call it.  Also the data folder: its default place and
its lock.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import platformdirs
import torch
from PIL import Image

from ..api import plan
from ..errors import OptionError, StyleTransferError
from ..examples import example_path
from ..folder_lock import FolderLock
from ..job import Job, make_job
from ..losses import blend_weights
from ..memory import available_bytes
from ..options import BY_NAME
from ..tiling.grid import TileSizeRounded, check_tile_size
from .checks import (
    MAX_STYLES,
    WebError,
    bounded_int,
    check_image,
    check_job_pixels,
    check_request_options,
    refuse_option,
)
from .instant import InstantRunner
from .queue import Queue
from .store import QUEUED, RUNNING, Store, valid_id

_MB = 1024 * 1024


@dataclass
class Config:
    """How the server was started (the ``serve`` flags)."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_mb: float = 25.0
    max_size: int = 2048
    token: str | None = None
    max_pixels: int = 80_000_000  # decoded pixels of one upload: more is a decompression bomb
    max_job_pixels: int = 100_000_000  # the pixels of all of one job's uploads together
    max_queued: int = 100  # jobs waiting (not counting the running ones); more is 429
    min_free_mb: float | None = None  # free disk under data_dir a new job needs; None: 10 x max_upload_mb + 200
    max_streams: int = 32  # event streams open at once; more is 429
    stream_seconds: float = 300.0  # an event stream ends after this long (the page's EventSource reconnects)
    run_jobs: bool = True  # False: jobs stay queued (tests of the queue)
    warm_instant: bool = True  # load the instant networks in the background at the start

    @property
    def disk_margin(self) -> int:
        """The free bytes under :attr:`data_dir` below which a new job is refused (507)."""
        mb = 10 * self.max_upload_mb + 200 if self.min_free_mb is None else self.min_free_mb
        return int(mb * _MB)


#: How many answers of ``GET /api/estimate`` are kept (least recently used dropped first).
ESTIMATE_CACHE = 128


def _now_iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def _stops_early(stored: str) -> bool | None:
    """Whether a stored job's preset may stop before its total (which is then a cap).

    ``None`` for a job that no longer reads (stored by another version with an
    option this one refuses): the list of jobs still shows it.
    """
    try:
        return Job.from_json(stored).preset().stops_early
    except (StyleTransferError, ValueError, TypeError):
        return None


@dataclass
class Uploads:
    """A new job's files as saved under its temporary folder, not yet checked."""

    content: Path
    styles: list[Path]
    masks: list[Path] = field(default_factory=list)
    style_masks: list[Path] = field(default_factory=list)
    fine_style: Path | None = None

    def files(self) -> list[tuple[str, str, Path]]:
        """Every file as ``(form field, name in the job's folder without extension, path)``."""
        found = [("content", "content", self.content)]
        found += [("style", f"style{i}", p) for i, p in enumerate(self.styles)]
        found += [("mask", f"mask{i}", p) for i, p in enumerate(self.masks)]
        found += [("style_mask", f"style_mask{i}", p) for i, p in enumerate(self.style_masks)]
        if self.fine_style is not None:
            found.append(("fine_style", "fine_style", self.fine_style))
        return found


class Studio:
    """The server's state: its store, its queue and how it was started."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(config.data_dir)
        self.queue = Queue(self.store)
        self.instant = InstantRunner()
        self._estimates: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._estimate_lock = threading.Lock()
        self._admit_lock = threading.Lock()
        self._streams: dict[int, float] = {}  # open event streams: number -> when it ends at the latest
        self._stream_count = 0
        self._streams_lock = threading.Lock()

    def start(self) -> None:
        self.store.requeue_running()
        if self.config.run_jobs:
            self.queue.start()
        if self.config.warm_instant:
            self.instant.warm()

    def stop(self) -> None:
        self.queue.stop()
        self.instant.stop()
        self.store.close()

    def job_json(self, row: dict[str, Any]) -> dict[str, Any]:
        step, total, loss = row["step"], row["total"], row["loss"]
        eta = None
        live = self.queue.live.get(row["id"]) if row["status"] == RUNNING else None
        if live is not None and live.progress is not None:
            step, total, loss, eta = live.step, live.total, live.progress["loss"], live.progress["eta_seconds"]
        return {
            "id": row["id"],
            "status": row["status"],
            "step": step,
            "total": total,
            "loss": loss,
            "eta_seconds": eta,
            "error": row["error"],
            "options": json.loads(row["options"]),
            "created": _now_iso(row["created"]),
            "finished": _now_iso(row["finished"]),
            "has_result": bool(row["has_result"]),
            "styles": row["styles"],
            "stop_rule": _stops_early(row["job"]),
        }

    def row(self, job_id: str) -> dict[str, Any]:
        row = self.store.get(job_id) if valid_id(job_id) else None
        if row is None:
            raise WebError(404, f"no job {job_id!r}")
        return row

    def check_room(self) -> None:
        """429 when the queue is full, 507 when the disk under the data folder is nearly full."""
        queued = self.store.count(QUEUED)
        if queued >= self.config.max_queued:
            raise WebError(
                429, f"{queued} jobs are waiting, this server's limit (--max-queued); try again when some have run"
            )
        self.check_disk()

    def check_disk(self) -> None:
        """507 when the disk under the data folder is nearly full (uploads are saved there first)."""
        free = shutil.disk_usage(self.config.data_dir).free
        if free < self.config.disk_margin:
            raise WebError(
                507,
                f"only {free // _MB:,} MB free under the data folder; a new job needs {self.config.disk_margin // _MB:,}"
                " MB (--min-free-mb)",
            )

    def create(self, uploads: Uploads, options: dict[str, Any], folder: Path, job_id: str) -> str:
        """Check the saved uploads and options, then move the folder into place and queue the job.

        The pixels of all the uploads are counted from their headers before
        any is decoded; the mask and fine-style paths of the job are the ones
        the server saved, never a request's text.
        """
        given = check_request_options(options)
        files = uploads.files()
        check_job_pixels(
            [(f, p) for f, _, p in files], self.config.max_pixels, self.config.max_job_pixels, free_memory()
        )
        names: dict[str, str] = {}
        for name, stem, path in files:
            names[stem] = stem + check_image(path, name, self.config.max_pixels)
            path.rename(folder / names[stem])
        final = self.store.folder(job_id)
        saved: dict[str, Any] = {}
        if uploads.masks:
            saved["masks"] = [str(final / names[f"mask{i}"]) for i in range(len(uploads.masks))]
        if uploads.style_masks:
            saved["style_masks"] = [str(final / names[f"style_mask{i}"]) for i in range(len(uploads.style_masks))]
        if uploads.fine_style is not None:
            saved["fine_style"] = str(final / names["fine_style"])
        styles = [final / names[f"style{i}"] for i in range(len(uploads.styles))]
        job = self._make_job(final / names["content"], styles, final / "result.png", {**given, **saved})
        job.options["manifest"] = True
        with self._admit_lock:
            self.check_room()
            self.store.add(job_id, folder, str(job.options["device"]), given_json(given), job.to_json(), len(styles))
        if self.config.run_jobs:
            self.queue.kick(str(job.options["device"]))
        return job_id

    def instant_job(self, content: Path, styles: list[Path], options: dict[str, Any]) -> Job:
        """Check an instant request's saved uploads (or examples) and options; the ``instant`` job, writing nothing.

        The same checks as a job's (:meth:`create`): the allow-list of
        options, the pixels of all the images from their headers, each image
        decoded, the size under ``--max-size``; an option the instant preset
        has no use for (``steps``, the loss weights...) is 422 naming it.
        """
        if options.get("preset", "instant") != "instant":
            raise WebError(
                422, "preset: /api/instant runs the instant preset; POST /api/jobs runs the others", "preset"
            )
        given = check_request_options(options | {"preset": "instant"})
        files = [("content", content)] + [("style", p) for p in styles]
        check_job_pixels(files, self.config.max_pixels, self.config.max_job_pixels, free_memory())
        for name, path in files:
            check_image(path, name, self.config.max_pixels)
        return self._make_job(content, styles, None, given)

    def _make_job(self, content: Path, styles: list[Path], output: Path | None, options: dict[str, Any]) -> Job:
        """:func:`~styletransfer.job.make_job`, then this server's own checks: ``size`` under ``--max-size``,
        one ``style_blend`` weight per style, a ``tile_size`` wider than its halos; each failure a 422 naming
        its option."""
        try:
            job = make_job(content, styles, output, **options)
            if job.options["size"] > self.config.max_size:
                raise WebError(
                    422, f"size: {job.options['size']} is over this server's limit of {self.config.max_size}", "size"
                )
            blend_weights(job.options["style_blend"], len(styles))
            preset = job.preset()
            if preset.tile_size is not None and not preset.instant:
                with warnings.catch_warnings():  # a rounded size is the run's to report
                    warnings.simplefilter("ignore", TileSizeRounded)
                    check_tile_size(preset.tile_size, (*preset.style_layers, *preset.content_layers))
        except OptionError as exc:
            raise WebError(422, exc.render(), exc.option) from None
        return job

    def estimate(self, query: list[tuple[str, str]]) -> dict[str, Any]:
        """The engine's plan for the options in ``query`` and a content of ``width`` x ``height``.

        Every parameter is bounded (the sides by ``--max-size``, the styles by
        the upload's limit) and the answers are cached, the least recently
        used dropped first.  One estimate is made at a time (it times an
        evaluation of the network); a request that comes meanwhile is 429 at
        once rather than a thread waiting for the lock.
        """
        values: dict[str, Any] = {}
        width, height, styles = min(512, self.config.max_size), min(384, self.config.max_size), 1
        for key, text in query:
            if key == "width":
                width = bounded_int(text, key, 1, self.config.max_size)
            elif key == "height":
                height = bounded_int(text, key, 1, self.config.max_size)
            elif key == "styles":
                styles = bounded_int(text, key, 1, MAX_STYLES)
            elif key != "token":
                refuse_option(key)
                values[key] = _query_value(key, text)
        given = check_request_options(values)
        if given.get("size", 0) > self.config.max_size:
            raise WebError(422, f"size: over this server's limit of {self.config.max_size}", "size")
        key = json.dumps([sorted((k, repr(v)) for k, v in given.items()), width, height, styles])
        if not self._estimate_lock.acquire(blocking=False):  # no queue of waiting threads behind a slow plan
            cached = self._estimates.get(key)
            if cached is not None:
                return cached
            raise WebError(429, "another estimate is being made (it times the network); ask again in a moment")
        try:
            if key in self._estimates:
                self._estimates.move_to_end(key)
                return self._estimates[key]
            content = Image.open(example_path("tubingen.jpg")).convert("RGB").resize((width, height))
            style = Image.open(example_path("starry_night.jpg")).convert("RGB")
            try:
                found = plan(content, [style] * styles, **given)
            except OptionError as exc:
                raise WebError(422, exc.render(), exc.option) from None
            self._estimates[key] = found
            while len(self._estimates) > ESTIMATE_CACHE:
                self._estimates.popitem(last=False)
            return found
        finally:
            self._estimate_lock.release()

    def open_stream(self) -> int:
        """Count a new event stream in; 429 when ``max_streams`` are open (one that outlived its end is dropped)."""
        now = time.monotonic()
        with self._streams_lock:
            self._streams = {n: end for n, end in self._streams.items() if end > now}
            if len(self._streams) >= self.config.max_streams:
                raise WebError(429, f"{len(self._streams)} event streams are open, this server's limit; try later")
            self._stream_count += 1
            self._streams[self._stream_count] = now + self.config.stream_seconds + 5.0
            return self._stream_count

    def close_stream(self, number: int) -> None:
        with self._streams_lock:
            self._streams.pop(number, None)


def _query_value(key: str, text: str) -> Any:
    """An option's value as a query parameter gives it (a list comma-separated)."""
    opt = BY_NAME[key]
    try:
        if opt.many:
            return opt.check([opt.parse_one(t) for t in text.split(",") if t.strip()])
        if opt.type == "bool":
            return text.lower() in ("1", "true", "yes")
        return opt.parse_one(text)
    except OptionError as exc:
        raise WebError(422, exc.render(), exc.option) from None


def free_memory() -> int | None:
    """The memory free now for decoding a job's images (the OS's ``MemAvailable``); ``None`` if unknown."""
    return available_bytes(torch.device("cpu"))


def given_json(given: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in given.items()}


def default_data_dir() -> Path:
    """The platform's user data directory for the studio."""
    return Path(platformdirs.user_data_dir("styletransfer", appauthor=False))


def open_data_dir(directory: Path) -> FolderLock:
    """Make the data folder (mode 0700: only its owner reads the jobs) and lock it for this process.

    Taken before anything else touches the folder: a second server on it would
    remove the first's uploads in progress and could run a job twice.

    Raises:
        FolderBusy: another process holds the folder (the message names it).
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    return FolderLock(directory, "styletransfer serve").acquire()
