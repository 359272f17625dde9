"""Batch: many content images, each with every style (or one blend of them), resumable.

:func:`plan_items` turns inputs (files or directories) and styles into
:class:`Item` objects, one :class:`~styletransfer.job.Job` each;
:func:`run_batch` runs the items that are not done yet on an executor (local
processes, :class:`~styletransfer.batch.local.LocalExecutor`, or Ray actors,
:class:`~styletransfer.batch.ray_executor.RayExecutor`) and records each
outcome as one line of ``OUT_DIR/batch.jsonl``:

``{"item", "content", "styles", "output", "settings", "status", "output_sha256", "error", "steps", "seconds"}``

``settings`` is a hash of what makes the picture (the run options, the
weights, the input files' contents, the output's name).  An item whose last
record is ``complete`` with the same settings, and whose output is still the
file recorded, is skipped; any other item runs (again).  Images are written
atomically and a record is one appended line (started on a line of its own,
after a torn one), so a batch killed at any moment loses at most the items
that were running.  A batch holds ``OUT_DIR``'s lock
(:class:`~styletransfer.folder_lock.FolderLock`) while it runs: a second one
on the same folder is refused, naming the first.

A time budget (the ``time`` option, ``--time``) is each item's own: it counts
from the moment that item's optimisation starts, not from the batch's start,
so every output is done within the budget of its own start (plus the time
to save it).  Items optimised together in one group (``--group``) start
together and end by the same deadline: the group takes the budget once.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import InputError, OptionError
from ..fileio import file_sha256, regular_file
from ..folder_lock import LOCK_NAME, FolderLock
from ..job import Job, make_job
from ..options import OPTIONS
from .worker import input_paths, unexpected_outputs

#: The ledger's file name inside the output directory.
LEDGER = "batch.jsonl"

#: What a directory contributes as content images (by extension, case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")

#: The default output name: the content's stem and the style's.
DEFAULT_NAME = "{stem}_{style}.png"


@dataclass
class Item:
    """One content image with one style (or the blend of all): its job, its ledger key and settings hash."""

    key: str
    job: Job
    settings: str


@dataclass
class Summary:
    """How a batch went: the items done now, skipped (done before), failed, and not run (stopped)."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    stopped: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)

    def line(self) -> str:
        """``N done, M skipped, K failed`` (and the items not run, when stopped)."""
        text = f"{self.done} done, {self.skipped} skipped, {self.failed} failed"
        return text + (f", {self.stopped} not run (stopped)" if self.stopped else "")


class Executor(Protocol):
    """Runs payloads and yields ``(index, outcome)`` as each finishes; ``ships_files`` for remote workers."""

    name: str
    ships_files: bool

    def run(self, payloads: Sequence[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]: ...

    def close(self) -> None: ...


def collect_inputs(inputs: Sequence[str | os.PathLike[str]], recursive: bool = False) -> list[Path]:
    """The content images: files as given, directories' image files (sorted; ``recursive`` descends).

    Raises:
        OptionError: on ``inputs``, for a path that does not exist, or when nothing is found.
        InputError: a path given that is not a regular file (a FIFO, a device); in directories those are skipped.
    """
    found: list[Path] = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found += sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            found.append(regular_file(path, "an image file or a directory"))
        else:
            raise OptionError("inputs", f"{path}: no such file or directory")
    if not found:
        raise OptionError("inputs", f"no images in {', '.join(str(p) for p in inputs)}")
    return list(dict.fromkeys(found))


def _safe_hash(path: str) -> str:
    try:
        return file_sha256(path)
    except (OSError, InputError):
        return "unreadable"


def settings_hash(job: Job, output_name: str) -> str:
    """A hash of what makes an item's picture: run options, weights, the inputs' bytes, the output's name."""
    made = {o.name: job.options[o.name] for o in OPTIONS if o.group == "run" or o.name == "weights"}
    data = {
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in made.items()},
        "preset_fields": job.preset_fields,
        "inputs": [_safe_hash(p) for p in input_paths(job)],
        "output": output_name,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def plan_items(
    inputs: Sequence[str | os.PathLike[str]],
    styles: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    name: str = DEFAULT_NAME,
    recursive: bool = False,
    **options: Any,
) -> list[Item]:
    """Every item of a batch: each content with each style, or with the blend of all when ``style_blend`` is given.

    ``name`` may use ``{stem}`` (the content's), ``{style}`` (the style's stem,
    or the styles' joined by ``+`` for a blend) and ``{index}``.

    Raises:
        OptionError: a bad option, a missing input, a name that gives two items one output or leaves ``out_dir``.
        InputError: a style or an input given that is not a regular file (a FIFO, a device).
    """
    if not styles:
        raise OptionError("style", "at least one style image is needed")
    for s in styles:
        regular_file(s, "an image file")  # every item would wait on a FIFO, or fail the same way
    contents = collect_inputs(inputs, recursive)
    out = Path(out_dir)
    groups: list[list[str]] = (
        [[str(s) for s in styles]] if options.get("style_blend") is not None else [[str(s)] for s in styles]
    )
    items: list[Item] = []
    seen: dict[str, Path] = {}
    for index, content in enumerate(contents):
        for group in groups:
            try:
                filename = name.format(stem=content.stem, style="+".join(Path(s).stem for s in group), index=index)
            except (KeyError, IndexError, ValueError) as exc:
                raise OptionError(
                    "name", f"{{option}} {name!r}: {exc}; use {{{{stem}}}}, {{{{style}}}}, {{{{index}}}}"
                ) from None
            if filename in seen:
                raise OptionError(
                    "name",
                    f"{{option}} {name!r} gives {content} and {seen[filename]} the same output {filename}; "
                    "add {index} to the name",
                )
            _check_inside(out, filename, name)
            seen[filename] = content
            job = make_job(content, group, out / filename, **options)
            items.append(Item(filename, job, settings_hash(job, filename)))
    return items


def _check_inside(out: Path, filename: str, name: str) -> None:
    """Refuse an output name that leaves ``out`` (``../``, an absolute path, a link out) or takes the batch's own files.

    Raises:
        OptionError: on ``name``.
    """
    root = out.resolve()
    target = (out / filename).resolve()
    if target == root or root not in target.parents:
        raise OptionError(
            "name", f"{{option}} {name!r} gives {filename}, outside the output directory {out}; name a file inside it"
        )
    if target.parent == root and target.name in (LEDGER, LOCK_NAME):
        raise OptionError("name", f"{{option}} {name!r} gives {filename}, the batch's own file; choose another name")


def read_ledger(out_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The last record of each item in ``OUT_DIR/batch.jsonl`` (a torn last line, from a kill, is ignored)."""
    path = Path(out_dir) / LEDGER
    last: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return last
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "item" in record:
                last[record["item"]] = record
    return last


def is_done(item: Item, record: dict[str, Any] | None) -> bool:
    """Whether ``record`` says ``item`` is done with its settings and its output is still that file."""
    if record is None or record.get("status") != "complete" or record.get("settings") != item.settings:
        return False
    output = item.job.output
    return output is not None and os.path.isfile(output) and _safe_hash(output) == record.get("output_sha256")


def _append(out_dir: Path, record: dict[str, Any]) -> None:
    """One record as one line, flushed to the disk before the next item is reported.

    The line starts on a line of its own: after a torn last line (a batch
    killed mid-write) a newline comes first, so the torn line stays alone
    (and :func:`read_ledger` skips it) instead of swallowing this record.
    """
    line = (json.dumps(record) + "\n").encode("utf-8")
    with open(out_dir / LEDGER, "ab+") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = b"\n" + line
        f.write(line)  # append mode: at the end, whatever the position
        f.flush()
        os.fsync(f.fileno())


def _write_back(outputs: dict[str, bytes]) -> None:
    """Write what a remote worker sent back, each file atomically (the driver alone writes the user's files).

    Only paths the item writes come here (:func:`~styletransfer.batch.worker.unexpected_outputs`).
    """
    from ..fileio import save_file_atomically

    for path, data in outputs.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_file_atomically(path, lambda f, data=data: f.write(data))  # type: ignore[misc]


def payload_for(item: Item, ships_files: bool) -> dict[str, Any]:
    """What a worker gets for ``item``: the job, and the input files' bytes when the worker is remote."""
    payload: dict[str, Any] = {"job": item.job.to_dict(), "item": item.key}
    if ships_files:
        files = {}
        for p in input_paths(item.job):
            try:
                files[p] = regular_file(p, "an image file").read_bytes()
            except InputError as exc:
                payload["error"] = str(exc)
            except OSError as exc:
                payload["error"] = f"{p}: cannot read it ({exc.strerror or exc})"
        payload["files"] = files
    return payload


def run_batch(
    items: Sequence[Item],
    out_dir: str | os.PathLike[str],
    executor: Executor,
    *,
    overwrite: bool = False,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> Summary:
    """Run the items not done yet on ``executor``, recording each outcome in ``OUT_DIR/batch.jsonl``.

    ``on_record(record)`` hears each record as it is written (skipped items
    too, with ``status`` ``skipped``; they are not written).  ``overwrite``
    runs every item again.  The batch holds ``OUT_DIR``'s lock
    (:class:`~styletransfer.folder_lock.FolderLock`) while it runs.

    Raises:
        FolderBusy: another process (a batch, the studio) holds ``OUT_DIR``: it would run every item again.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with FolderLock(out, "a batch"):
        return _run_locked(items, out, executor, overwrite, on_record)


def _run_locked(
    items: Sequence[Item],
    out: Path,
    executor: Executor,
    overwrite: bool,
    on_record: Callable[[dict[str, Any]], None] | None,
) -> Summary:
    """:func:`run_batch` once the lock is held."""
    ledger = {} if overwrite else read_ledger(out)
    summary = Summary()
    todo: list[Item] = []
    for item in items:
        if is_done(item, ledger.get(item.key)):
            summary.skipped += 1
            record = {**ledger[item.key], "status": "skipped"}
            summary.records.append(record)
            if on_record is not None:
                on_record(record)
        else:
            todo.append(item)
    payloads = [payload_for(item, executor.ships_files) for item in todo]
    finished: set[int] = set()
    for i, outcome in executor.run(payloads):
        item = todo[i]
        finished.add(i)
        if outcome["status"] != "failed" and outcome.get("outputs"):
            stray = unexpected_outputs(item.job, list(outcome["outputs"]))
            if stray:  # a worker is not trusted with the user's files: nothing of this item is written
                error = f"the worker sent back {stray[0]}, which this item does not write; nothing written"
                outcome = {**outcome, "status": "failed", "error": error}
            else:
                try:
                    _write_back(outcome["outputs"])
                except OSError as exc:
                    outcome = {**outcome, "status": "failed", "error": str(exc)}
        output = item.job.output
        status = outcome["status"]
        record = {
            "item": item.key,
            "content": item.job.content,
            "styles": list(item.job.styles),
            "output": output,
            "settings": item.settings,
            "status": status,
            "output_sha256": _safe_hash(output) if status == "complete" and output else None,
            "error": outcome.get("error"),
            "steps": outcome.get("steps", 0),
            "seconds": round(float(outcome.get("seconds", 0.0)), 3),
            "executor": executor.name,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        _append(out, record)
        summary.records.append(record)
        if status == "complete":
            summary.done += 1
        elif status in ("failed", "diverged"):
            summary.failed += 1
        else:  # interrupted or cancelled: not done, run again next time
            summary.stopped += 1
        if on_record is not None:
            on_record(record)
    summary.stopped += len(todo) - len(finished)
    return summary


def make_executor(
    name: str,
    workers: int = 1,
    *,
    address: str | None = None,
    threads: int | None = None,
    weights: str | None = None,
    group: int | None = None,
) -> Executor:
    """``local`` (N worker processes) or ``ray`` (N actors; ``address`` of a running cluster, else a local one).

    ``group``: the most items of one shape (and the same options and styles)
    optimised together in one batch; default 8 with a CUDA GPU, else 1
    (:func:`~styletransfer.batch.worker.default_group`).

    Raises:
        OptionError: on ``executor``, for an unknown name.
    """
    if name == "local":
        from .local import LocalExecutor

        return LocalExecutor(workers, threads, group)
    if name == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(workers, address=address, threads=threads, weights=weights, group=group)
    raise OptionError("executor", f"{{option}}: unknown executor {name!r}; choose from local, ray")


__all__ = [
    "DEFAULT_NAME",
    "LEDGER",
    "Executor",
    "Item",
    "Summary",
    "collect_inputs",
    "is_done",
    "make_executor",
    "plan_items",
    "read_ledger",
    "run_batch",
    "settings_hash",
]
