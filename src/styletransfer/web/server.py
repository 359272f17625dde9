"""The web studio's server: FastAPI on uvicorn, the HTTP API of ``styletransfer serve`` and the static page.

See ``docs/studio.md``.  The page (``static/``) is plain HTML, CSS and
JavaScript: nothing is built or fetched at run time.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
import webbrowser
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..errors import MissingExtra, OptionError, StyleTransferError
from ..examples import EXAMPLES, example_path
from ..folder_lock import FolderLock
from ..job import Job, make_job
from ..losses import blend_weights
from ..options import BY_NAME, OPTIONS, json_schema
from ..presets import INSTANT_OPTIONS, PRESETS
from .checks import (
    EXTENSIONS,
    FORM_FIELDS,
    INSTANT_FIELDS,
    MAX_STYLES,
    WEB_OPTIONS,
    WebError,
    bounded_int,
    check_image,
    check_job_pixels,
    check_request_options,
    refuse_option,
)
from .guard import LOCAL_HOSTS, Guard, TooLarge, error_response
from .instant import FORMATS, InstantRunner, Picture
from .queue import Queue, encode_jpeg
from .store import FINISHED, QUEUED, RUNNING, Store, new_id, valid_id

STATIC = Path(__file__).resolve().parent / "static"

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


#: The most jobs ``GET /api/jobs`` answers with at once, and its default.
MAX_PAGE, DEFAULT_PAGE = 200, 50

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
        one ``style_blend`` weight per style; each failure a 422 naming its option."""
        try:
            job = make_job(content, styles, output, **options)
            if job.options["size"] > self.config.max_size:
                raise WebError(
                    422, f"size: {job.options['size']} is over this server's limit of {self.config.max_size}", "size"
                )
            blend_weights(job.options["style_blend"], len(styles))
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
            from ..api import plan

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
    import torch

    from ..memory import available_bytes

    return available_bytes(torch.device("cpu"))


def given_json(given: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in given.items()}


def create_app(config: Config) -> FastAPI:
    """The studio's application (the server state is created now; its runners start with the app)."""
    studio = Studio(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        studio.start()
        try:
            yield
        finally:
            await run_in_threadpool(studio.stop)

    app = FastAPI(title="styletransfer studio", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.studio = studio

    @app.exception_handler(WebError)
    async def weberror_response(request: Request, exc: WebError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.field)

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        response = FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
        token = request.query_params.get("token")
        if token is not None and config.token is not None:
            response.set_cookie("studio_token", token, httponly=True, samesite="strict")
        return response

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/options")
    async def options() -> dict[str, Any]:
        return {
            "instant_options": sorted(INSTANT_OPTIONS & WEB_OPTIONS),
            "options": [o.describe() | {"web": o.name in WEB_OPTIONS} for o in OPTIONS],
            "presets": {name: given_json(asdict(p)) for name, p in PRESETS.items()},
            "schema": json_schema(),
            "max_size": config.max_size,
            "max_upload_mb": config.max_upload_mb,
            "max_styles": MAX_STYLES,
            "max_pixels": config.max_pixels,
            "max_job_pixels": config.max_job_pixels,
            "examples": list(EXAMPLES),
        }

    @app.get("/api/examples/{name}")
    async def example(name: str) -> Response:
        if name not in EXAMPLES:
            raise WebError(404, f"no bundled example {name!r}")
        return FileResponse(example_path(name), media_type="image/jpeg")

    @app.get("/api/estimate")
    def estimate(request: Request) -> dict[str, Any]:
        return studio.estimate(list(request.query_params.multi_items()))

    @app.post("/api/jobs", status_code=201)
    async def create(request: Request) -> JSONResponse:
        await run_in_threadpool(studio.check_room)  # before a byte of the upload is stored
        job_id = new_id()
        folder = config.data_dir / "tmp" / job_id
        folder.mkdir(parents=True)
        try:
            try:
                form = await request.form(max_files=3 * MAX_STYLES + 2, max_fields=16)
            except TooLarge:
                raise WebError(413, f"the upload is over the limit of {config.max_upload_mb:g} MB", "content") from None
            except Exception as exc:
                raise WebError(422, f"the request is not a multipart form: {exc}", "content") from None
            try:
                options = _form_options(form)
                files = {name: _form_files(form, name) for name in FORM_FIELDS if name != "options"}
                saved: dict[str, list[Path]] = {}
                for name, uploads in files.items():
                    saved[name] = []
                    for i, upload in enumerate(uploads):
                        path = folder / f"upload-{name}-{i}"
                        await run_in_threadpool(_copy, upload, path)
                        saved[name].append(path)
                given = Uploads(
                    saved["content"][0],
                    saved["style"],
                    saved["mask"],
                    saved["style_mask"],
                    saved["fine_style"][0] if saved["fine_style"] else None,
                )
                await run_in_threadpool(studio.create, given, options, folder, job_id)
            finally:
                await form.close()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return JSONResponse({"id": job_id, "status": QUEUED}, status_code=201)

    @app.post("/api/instant")
    async def instant(request: Request) -> Response:
        """The instant preset's picture, answered at once (JPEG, or PNG with ``?format=png``); nothing is kept."""
        fmt = "jpeg"
        for key, text in request.query_params.multi_items():
            if key == "format" and text in FORMATS:
                fmt = text
            elif key != "token":
                raise WebError(422, f"{key}: unknown parameter; use format=jpeg or format=png", key)
        received = time.perf_counter()
        await run_in_threadpool(studio.check_disk)  # before a byte of the upload is stored
        studio.instant.admit()
        folder = config.data_dir / "tmp" / ("instant-" + new_id())
        folder.mkdir(parents=True)
        try:
            try:
                form = await request.form(max_files=MAX_STYLES + 1, max_fields=MAX_STYLES + 4)
            except TooLarge:
                raise WebError(413, f"the upload is over the limit of {config.max_upload_mb:g} MB", "content") from None
            except Exception as exc:
                raise WebError(422, f"the request is not a multipart form: {exc}", "content") from None
            try:
                options = _form_options(form, INSTANT_FIELDS)
                content, styles = await _instant_inputs(form, folder)
                job = await run_in_threadpool(studio.instant_job, content, styles, options)
            finally:
                await form.close()
            try:
                picture: Picture = await studio.instant.run(job, fmt)
            except MissingExtra as exc:
                raise WebError(503, str(exc)) from None
            except OptionError as exc:
                raise WebError(422, exc.render(), exc.option) from None
            except StyleTransferError as exc:
                raise WebError(422, str(exc)) from None
        finally:
            studio.instant.release()
            await run_in_threadpool(shutil.rmtree, folder, True)
        total = time.perf_counter() - received
        return Response(
            picture.data,
            media_type=picture.media_type,
            headers={
                "Cache-Control": "no-store",
                "X-Instant-Seconds": f"{picture.seconds:.3f}",
                "X-Image-Size": f"{picture.width}x{picture.height}",
                "Server-Timing": f"instant;dur={picture.seconds * 1000:.1f}, total;dur={total * 1000:.1f}",
            },
        )

    @app.get("/api/jobs")
    async def jobs(request: Request) -> dict[str, Any]:
        limit, before = DEFAULT_PAGE, None
        for key, text in request.query_params.multi_items():
            if key == "limit":
                limit = bounded_int(text, key, 1, MAX_PAGE)
            elif key == "before":
                before = bounded_int(text, key, 0, 2**62)
            elif key != "token":
                raise WebError(422, f"{key}: unknown parameter; use limit and before", key)
        rows = studio.store.page(limit + 1, before)
        more = len(rows) > limit
        rows = rows[:limit]
        return {"jobs": [studio.job_json(r) for r in rows], "next": rows[-1]["seq"] if more else None}

    @app.get("/api/jobs/{job_id}")
    async def job(job_id: str) -> dict[str, Any]:
        return studio.job_json(studio.row(job_id))

    @app.get("/api/jobs/{job_id}/events")
    async def events(job_id: str, request: Request) -> StreamingResponse:
        studio.row(job_id)
        number = studio.open_stream()

        async def stream() -> AsyncIterator[str]:
            try:
                async for event in _job_events(studio, job_id, request):
                    yield event
            finally:
                studio.close_stream(number)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            background=BackgroundTask(studio.close_stream, number),
        )

    @app.get("/api/jobs/{job_id}/preview.jpg")
    def preview(job_id: str) -> Response:
        row = studio.row(job_id)
        live = studio.queue.live.get(job_id)
        if live is not None and live.tensor is not None:
            step, tensor = live.step, live.tensor
            if live.preview is None or live.preview[0] != step:
                from ..images import to_pil

                live.preview = (step, encode_jpeg(to_pil(tensor)))
            return Response(live.preview[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"})
        folder = studio.store.folder(job_id)
        cached = folder / "preview.jpg"
        if row["has_result"] and (folder / "result.png").is_file():
            if not cached.is_file():
                with Image.open(folder / "result.png") as im:
                    data = encode_jpeg(im)
                from ..fileio import save_file_atomically

                save_file_atomically(cached, lambda f: f.write(data))
            return FileResponse(cached, media_type="image/jpeg")
        raise WebError(404, f"job {job_id} has no image yet ({row['status']})")

    @app.get("/api/jobs/{job_id}/result.png")
    async def result(job_id: str) -> Response:
        row = studio.row(job_id)
        path = studio.store.folder(job_id) / "result.png"
        if not row["has_result"] or not path.is_file():
            raise WebError(404, f"job {job_id} has no result ({row['status']})")
        return FileResponse(path, media_type="image/png", filename=f"styletransfer-{job_id}.png")

    @app.get("/api/jobs/{job_id}/manifest.json")
    async def manifest(job_id: str) -> Response:
        row = studio.row(job_id)
        path = studio.store.folder(job_id) / "result.png.json"  # the manifest beside the output
        if not row["has_result"] or not path.is_file():
            raise WebError(404, f"job {job_id} has no manifest ({row['status']})")
        return FileResponse(path, media_type="application/json", filename=f"styletransfer-{job_id}.json")

    @app.get("/api/jobs/{job_id}/content")
    async def content(job_id: str) -> Response:
        studio.row(job_id)
        return _input(studio.store.folder(job_id), "content")

    @app.get("/api/jobs/{job_id}/style/{index}")
    async def style(job_id: str, index: int) -> Response:
        row = studio.row(job_id)
        if not 0 <= index < row["styles"]:
            raise WebError(404, f"job {job_id} has no style {index}")
        return _input(studio.store.folder(job_id), f"style{index}")

    @app.post("/api/jobs/{job_id}/cancel")
    async def cancel(job_id: str) -> dict[str, Any]:
        row = studio.row(job_id)
        if row["status"] == QUEUED and studio.store.cancel_queued(job_id):
            return studio.job_json(studio.row(job_id))
        if row["status"] in FINISHED:
            raise WebError(409, f"job {job_id} has already ended ({row['status']})")
        deadline = time.monotonic() + 2.0
        while not studio.queue.cancel(job_id) and time.monotonic() < deadline:  # claimed, not yet started
            if studio.row(job_id)["status"] in FINISHED:
                break
            await asyncio.sleep(0.05)
        return studio.job_json(studio.row(job_id)) | {"cancelling": True}

    @app.delete("/api/jobs/{job_id}", status_code=204)
    async def delete(job_id: str) -> Response:
        row = studio.row(job_id)
        if row["status"] not in FINISHED or not studio.store.delete(job_id):
            raise WebError(409, f"job {job_id} is {row['status']}; cancel it first")
        return Response(status_code=204)

    app.add_middleware(
        Guard, host=config.host, port=config.port, max_upload_mb=config.max_upload_mb, token=config.token
    )
    return app


async def _job_events(studio: Studio, job_id: str, request: Request) -> AsyncIterator[str]:
    """A job's Server-Sent Events: progress at most 4 times a second, then its end.

    The stream ends after ``stream_seconds`` without an end event; the page's
    ``EventSource`` then connects again (after ``retry`` ms), so no stream
    holds the server forever.
    """
    yield "retry: 1000\n\n"
    deadline = time.monotonic() + studio.config.stream_seconds
    last = -1
    watched = False  # whether this stream saw the job before it ended
    while time.monotonic() < deadline:
        row = studio.store.get(job_id)
        if row is None:
            return
        if row["status"] in FINISHED:
            final = studio.queue.last_progress.get(job_id)
            if watched and final is not None and final["step"] != last:  # a short job's last step, unsent
                yield f"event: progress\ndata: {json.dumps(final)}\n\n"
            yield f"event: {row['status']}\ndata: {json.dumps(studio.job_json(row))}\n\n"
            return
        watched = True
        live = studio.queue.live.get(job_id)
        if live is not None and live.progress is not None and live.step != last:
            last = live.step
            yield f"event: progress\ndata: {json.dumps(live.progress)}\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.25)


def _form_options(form: Any, fields: tuple[str, ...] = FORM_FIELDS) -> dict[str, Any]:
    """The form's ``options`` field as a JSON object (not yet checked); 422 naming a field not in ``fields``."""
    unknown = set(form.keys()) - set(fields)
    if unknown:
        name = sorted(unknown)[0]
        raise WebError(422, f"{name}: unknown form field; send {', '.join(fields)}", name)
    raw = form.get("options") or "{}"
    if not isinstance(raw, str):
        raise WebError(422, "options: must be a JSON object, not a file", "options")
    try:
        options = json.loads(raw)
    except ValueError as exc:
        raise WebError(422, f"options: not valid JSON ({exc})", "options") from None
    if not isinstance(options, dict):
        raise WebError(422, "options: must be a JSON object of option names and values", "options")
    return options


def _form_files(form: Any, name: str) -> list[UploadFile]:
    """The files of one form field, their number checked; 422 naming the field."""
    found = form.getlist(name)
    if not all(isinstance(f, UploadFile) for f in found):
        raise WebError(422, f"{name}: must be an image file, not text", name)
    styles = len(form.getlist("style"))
    if name == "content" and len(found) != 1:
        raise WebError(422, "content: give exactly one content image file", "content")
    if name == "style" and not found:
        raise WebError(422, "style: give one or more style image files", "style")
    if name == "style" and len(found) > MAX_STYLES:
        raise WebError(422, f"style: at most {MAX_STYLES} style images", "style")
    if name in ("mask", "style_mask") and found and len(found) != styles:
        raise WebError(422, f"{name}: give one {name} per style image ({styles}), not {len(found)}", name)
    if name == "fine_style" and len(found) > 1:
        raise WebError(422, "fine_style: give at most one fine-style image", "fine_style")
    return list(found)


async def _instant_inputs(form: Any, folder: Path) -> tuple[Path, list[Path]]:
    """An instant request's content and styles: uploads saved under ``folder``, or bundled examples by name.

    An example is named, never a path: a name not in the bundled list is 422.
    """
    found: dict[str, list[Path]] = {}
    for name in ("content", "style"):
        uploads = form.getlist(name)
        examples = form.getlist(name + "_example")
        if not all(isinstance(f, UploadFile) for f in uploads):
            raise WebError(422, f"{name}: must be an image file, not text", name)
        if not all(isinstance(e, str) for e in examples):
            raise WebError(422, f"{name}_example: must be the name of a bundled example, not a file", name + "_example")
        for e in examples:
            if e not in EXAMPLES:
                raise WebError(
                    422, f"{name}_example: no bundled example {e[:60]!r}; choose from {', '.join(EXAMPLES)}", name
                )
        paths = [example_path(e) for e in examples]
        for i, upload in enumerate(uploads):
            path = folder / f"upload-{name}-{i}"
            await run_in_threadpool(_copy, upload, path)
            paths.append(path)
        found[name] = paths
    if len(found["content"]) != 1:
        raise WebError(422, "content: give exactly one content image (a file, or content_example)", "content")
    if not found["style"]:
        raise WebError(422, "style: give one or more style images (files, or style_example)", "style")
    if len(found["style"]) > MAX_STYLES:
        raise WebError(422, f"style: at most {MAX_STYLES} style images", "style")
    return found["content"][0], found["style"]


def _copy(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with open(path, "wb") as f:
        shutil.copyfileobj(upload.file, f, 1 << 20)


def _input(folder: Path, stem: str) -> Response:
    for ext in EXTENSIONS:
        path = folder / (stem + ext)
        if path.is_file():
            return FileResponse(path)
    raise WebError(404, f"no {stem} image")


def default_data_dir() -> Path:
    """The platform's user data directory for the studio."""
    import platformdirs

    return Path(platformdirs.user_data_dir("styletransfer", appauthor=False))


#: The shortest token ``serve`` takes (``secrets.token_urlsafe(24)`` makes 32 characters).
MIN_TOKEN = 16


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


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    data_dir: str | Path | None = None,
    max_upload_mb: float = 25.0,
    max_size: int = 2048,
    token: str | None = None,
    open_browser: bool = False,
    *,
    max_queued: int = 100,
    max_job_pixels: int = 100_000_000,
    min_free_mb: float | None = None,
) -> int:
    """Run the studio until Ctrl-C (``styletransfer serve``); prints its URL first.

    Raises:
        OptionError: a ``token`` shorter than :data:`MIN_TOKEN` characters.
        FolderBusy: another process serves the same data folder.
    """
    import secrets

    import uvicorn

    if token is not None and len(token) < MIN_TOKEN:
        raise OptionError("token", f"{{option}} must be at least {MIN_TOKEN} characters long, not {len(token)}")
    if host not in LOCAL_HOSTS and token is None:
        token = secrets.token_urlsafe(24)
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    lock = open_data_dir(directory)  # held until the server stops (acquired already: not a context manager here)
    try:
        config = Config(
            directory,
            host,
            port,
            max_upload_mb,
            max_size,
            token,
            max_job_pixels=max_job_pixels,
            max_queued=max_queued,
            min_free_mb=min_free_mb,
        )
        app = create_app(config)
        shown = host if host not in ("0.0.0.0", "::") else "127.0.0.1"
        shown = f"[{shown}]" if ":" in shown else shown
        url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
        print(f"styletransfer studio: {url}  (data in {directory}; Ctrl-C stops it)", flush=True)
        if open_browser:
            threading.Timer(1.0, webbrowser.open, [url]).start()
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    finally:
        lock.release()
    return 0


__all__ = ["Config", "StyleTransferError", "WebError", "create_app", "open_data_dir", "serve"]
