"""The job queue: one runner thread per device, running that device's jobs in FIFO order with :func:`run_job`.

A running job's latest image is kept as a tensor (a cheap copy after each
evaluation); it is encoded as JPEG only when a client asks for the preview.
Every few seconds the runner writes ``snapshot.png`` into the job's folder:
after a crash the job goes back to the queue and starts again from it.
"""

from __future__ import annotations

import io
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import StyleTransferError
from ..events import JobResult, Observer
from ..fileio import save_file_atomically
from ..job import Job
from ..pipeline import total_steps
from ..runner import run_job
from .store import CANCELLED, DONE, FAILED, QUEUED, Store

#: Seconds between the snapshots a running job leaves for a restart.
SNAPSHOT_SECONDS = 2.0

#: Seconds between writes of a running job's step and loss to the database.
DB_SECONDS = 1.0

#: The long side of a preview (JPEG).
PREVIEW_SIDE = 512


@dataclass
class Live:
    """What is known of a running job between database writes."""

    step: int = 0
    total: int = 0
    offset: int = 0  # steps done before a restart (the run resumed from a snapshot)
    progress: dict[str, Any] | None = None
    tensor: Any = None
    started: float = field(default_factory=time.perf_counter)
    stop: threading.Event = field(default_factory=threading.Event)
    reason: str = ""  # "cancel" or "shutdown"
    stops_early: bool = False  # the preset may end the run before ``total`` (its stopping rule); JSON "stop_rule"
    budget: float | None = None  # the job's time budget (its ``time`` option): the ETA is at most what is left of it
    preview: tuple[int, bytes] | None = None


def encode_jpeg(image: Any, side: int = PREVIEW_SIDE) -> bytes:
    """A PIL image as JPEG bytes, its long side at most ``side``."""
    image = image.convert("RGB")
    image.thumbnail((side, side))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return buf.getvalue()


class _Watch(Observer):
    """Keeps the live state of a job, writes its progress to the store and its snapshot to its folder."""

    def __init__(self, store: Store, job_id: str, live: Live, folder: Path) -> None:
        self.store, self.job_id, self.live, self.folder = store, job_id, live, folder
        self.last_db = self.last_snapshot = time.monotonic()

    def progress(self, p: Any) -> None:
        live = self.live
        step, total = live.offset + p.step, live.offset + p.total
        live.tensor = p.tensor()
        elapsed = time.perf_counter() - live.started
        eta = elapsed / p.step * (p.total - p.step) if p.step else None
        if eta is not None and live.budget is not None:
            eta = min(eta, max(0.0, live.budget - elapsed))
        live.progress = {
            "step": step,
            "total": total,
            "size": p.size,
            "style": p.style,
            "content": p.content,
            "tv": p.tv,
            "loss": p.loss,
            "elapsed": round(elapsed, 3),
            "eta_seconds": None if eta is None else round(eta, 1),
            "stop_rule": live.stops_early,
        }
        live.step, live.total = step, total
        now = time.monotonic()
        if now - self.last_db >= DB_SECONDS:
            self.last_db = now
            self.store.progress(self.job_id, step, total, p.loss)
        if now - self.last_snapshot >= SNAPSHOT_SECONDS:
            self.last_snapshot = now
            self._snapshot(p, step)

    def _snapshot(self, p: Any, step: int) -> None:
        image = p.image()
        save_file_atomically(self.folder / "snapshot.png", lambda f: image.save(f, "PNG"))
        self.store.snapshot(self.job_id, step)


class Queue:
    """The runners: one thread per device key (the job's ``device`` option), started when work arrives."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.live: dict[str, Live] = {}
        #: The last progress event of recently finished jobs, so that an event stream that polled
        #: between two of a short job's steps still sends it before the end (the newest 256 kept).
        self.last_progress: dict[str, dict[str, Any]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._wake: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._shutdown = threading.Event()

    def start(self) -> None:
        """Start a runner for every device with queued jobs (after a restart)."""
        for device in self.store.devices():
            self.kick(device)

    def kick(self, device: str) -> None:
        """A job was queued for ``device``: wake its runner, starting it if needed (again, if it died)."""
        with self._lock:
            if self._shutdown.is_set():
                return
            thread = self._threads.get(device)
            if thread is None or not thread.is_alive():
                self._wake[device] = threading.Event()
                thread = threading.Thread(target=self._run, args=(device,), name=f"runner-{device}", daemon=True)
                self._threads[device] = thread
                thread.start()
            self._wake[device].set()

    def cancel(self, job_id: str) -> bool:
        """Stop a running job within one evaluation (its image so far becomes its result)."""
        live = self.live.get(job_id)
        if live is None:
            return False
        live.reason = "cancel"
        live.stop.set()
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the runners: a running job stops and stays ``running`` in the store, to be resumed at the next start."""
        self._shutdown.set()
        for live in list(self.live.values()):
            live.reason = live.reason or "shutdown"
            live.stop.set()
        for event in self._wake.values():
            event.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads.values():
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self, device: str) -> None:
        wake = self._wake[device]
        while not self._shutdown.is_set():
            try:
                row = self.store.next_queued(device)
            except Exception:  # the database failed (disk full, locked): wait and try again
                traceback.print_exc()
                row = None
            if row is None:
                wake.wait(1.0)
                wake.clear()
                continue
            self._run_one(row)

    def _run_one(self, row: dict[str, Any]) -> None:
        """Run one claimed job to its end; whatever goes wrong, it ends ``failed`` with the reason, never ``running``."""
        job_id = row["id"]
        live = Live()
        try:
            folder = self.store.folder(job_id)
            job = Job.from_json(row["job"])
            live.stops_early = job.preset().stops_early
            live.budget = job.options.get("time")
            snapshot = folder / "snapshot.png"
            if row["snapshot_step"] and snapshot.is_file():
                job, live.offset = resumed(job, snapshot, row["snapshot_step"])
            self.live[job_id] = live
            result = run_job(job, [_Watch(self.store, job_id, live, folder)], should_stop=live.stop.is_set)
        except StyleTransferError as exc:
            self._end(job_id, FAILED, str(exc), live)
            return
        except Exception as exc:  # a bug or a stored job this version cannot read: the job fails, the server goes on
            traceback.print_exc()
            self._end(job_id, FAILED, f"internal error: {type(exc).__name__}: {exc}", live)
            return
        finally:
            self.live.pop(job_id, None)
        if live.reason == "shutdown":
            return  # stays "running": re-queued and resumed at the next start
        self._finish(job_id, result, live)

    def _finish(self, job_id: str, result: JobResult, live: Live) -> None:
        has_result = result.output is not None
        if live.progress is None and result.steps:  # the instant preset: one pass, no progress events
            self.store.progress(job_id, result.steps, result.steps, None)
        if result.status == "complete":
            self._end(job_id, DONE, None, live, has_result)
        elif result.status == "diverged":
            self._end(job_id, FAILED, result.error, live, has_result)
        else:  # interrupted (image so far kept) or cancelled before the first evaluation
            self._end(job_id, CANCELLED, None, live, has_result)

    def _end(self, job_id: str, status: str, error: str | None, live: Live, has_result: bool = False) -> None:
        if live.progress is not None:
            self.store.progress(job_id, live.step, live.total, live.progress["loss"])
            self.last_progress[job_id] = live.progress
            while len(self.last_progress) > 256:
                del self.last_progress[next(iter(self.last_progress))]
        self.store.finish(job_id, status, error=error, has_result=has_result)
        (self.store.folder(job_id) / "snapshot.png").unlink(missing_ok=True)


def resumed(job: Job, snapshot: Path, done: int) -> tuple[Job, int]:
    """The job restarted from ``snapshot`` after ``done`` steps, and the steps it counts as done.

    The snapshot is the new start.  A one-scale job runs the steps it had left
    (its step count goes on from ``done``); a coarse-to-fine job runs its
    whole schedule again from the snapshot (its count starts at 0).
    """
    options = dict(job.options)
    options["init"] = str(snapshot)
    total = total_steps(job.preset())
    offset = 0
    if total == options["steps"] and done < total:
        options["steps"] = total - done
        offset = done
    return Job(job.content, job.styles, job.output, options, job.preset_fields), offset


__all__ = ["QUEUED", "Live", "Queue", "encode_jpeg", "resumed"]
