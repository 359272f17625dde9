"""Running a batch: the items not done yet on an executor, each outcome written back and recorded in the ledger.

The driver alone writes the user's files: a remote worker's outputs come back
as bytes and are written atomically here, only those the item writes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import InputError, OptionError
from ..fileio import regular_file, save_file_atomically
from ..folder_lock import FolderLock
from .ledger import Item, append_record, is_done, read_ledger, safe_hash
from .worker import input_paths, unexpected_outputs


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


def _write_back(outputs: dict[str, bytes]) -> None:
    """Write what a remote worker sent back, each file atomically (the driver alone writes the user's files).

    Only paths the item writes come here (:func:`~styletransfer.batch.worker.unexpected_outputs`).
    """
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
            "output_sha256": safe_hash(output) if status == "complete" and output else None,
            "error": outcome.get("error"),
            "steps": outcome.get("steps", 0),
            "seconds": round(float(outcome.get("seconds", 0.0)), 3),
            "executor": executor.name,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        append_record(out, record)
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
