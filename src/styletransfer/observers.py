"""The observers every front end can attach to a job: CSV log, snapshots, figures, manifest.

Each one hears :func:`styletransfer.runner.run_job`'s events and writes files;
none prints.  A problem they cannot recover from before the run is caught by
:func:`styletransfer.job.check_outputs`; a snapshot that cannot be written
mid-run (a full disk) stops the snapshots and warns, and the run goes on.
"""

from __future__ import annotations

import csv
import math
import warnings
from typing import IO, Any

from .errors import OptionError
from .events import JobResult, JobStart, Observer
from .images import resize, save_image, scaled_shape
from .job import Job
from .manifest import write_manifest
from .optimize import Progress


class SnapshotsStopped(UserWarning):
    """A snapshot could not be written; the run goes on without snapshots."""


class CsvLog(Observer):
    """Writes ``step, size, loss, style, content, tv, elapsed`` for every evaluation to a CSV file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.file: IO[str] | None = None
        self.writer: Any = None

    def start(self, run: JobStart) -> None:
        try:
            self.file = open(self.path, "w", newline="", buffering=1)  # noqa: SIM115 - open for the run, closed in close(); line-buffered
        except OSError as exc:
            raise OptionError(
                "log", f"{{option}} {self.path}: cannot write it ({exc.strerror}); choose another path"
            ) from exc
        self.writer = csv.writer(self.file)
        self.writer.writerow(["step", "size", "loss", "style", "content", "tv", "elapsed"])

    def progress(self, p: Progress) -> None:
        self.writer.writerow([p.step, p.size, p.loss, p.style, p.content, p.tv, f"{p.elapsed:.3f}"])

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class Snapshots(Observer):
    """Writes the image every ``every`` steps to ``OUT.stepNNNNN.EXT``; never a NaN image, never over a file."""

    def __init__(self, job: Job, every: int) -> None:
        self.job, self.every = job, every

    def progress(self, p: Progress) -> None:

        if not self.every or p.step % self.every or not math.isfinite(p.loss):
            return
        path = self.job.snapshot_path(p.step)
        try:
            save_image(p.tensor(), path)
        except OSError as exc:  # a full disk must not cost the run: go on without snapshots
            self.every = 0
            warnings.warn(
                SnapshotsStopped(f"cannot write the snapshot {path} ({exc}); going on without snapshots"), stacklevel=2
            )


class Figures(Observer):
    """Collects the loss terms and progress frames, and writes the seed's diagnostic figures at the end."""

    def __init__(self, directory: str, every: int | None = None) -> None:
        self.directory, self.every = directory, every
        self.records: list[dict[str, float]] = []
        self.frames: list[tuple[int, Any]] = []
        self.run: JobStart | None = None

    def start(self, run: JobStart) -> None:
        self.run = run
        self.every = self.every or max(1, run.total // 10)

    def progress(self, p: Progress) -> None:
        self.records.append({"step": p.step, "loss": p.loss, "style": p.style, "content": p.content, "tv": p.tv})
        if self.every and p.step % self.every == 0 and math.isfinite(p.loss):
            self.frames.append((p.step, p.tensor()))

    def end(self, result: JobResult) -> None:
        from .figures import write_figures  # matplotlib: imported only by a run that asks for figures

        if result.status != "complete" or self.run is None:
            return
        size = self.run.settings.preset.size
        content = self.run.inputs.content_pixels
        style = self.run.inputs.style_pixels[0]
        result.files["figures"] = write_figures(
            self.directory,
            resize(content, scaled_shape(content.shape[2], content.shape[3], size)),
            resize(style, scaled_shape(style.shape[2], style.shape[3], size)),
            result=result.image,
            frames=self.frames,
            log=self.records,
        )


class Manifest(Observer):
    """Writes ``OUT.json`` beside the output once it is saved (see :mod:`styletransfer.manifest`)."""

    def __init__(self) -> None:
        self.run: JobStart | None = None

    def start(self, run: JobStart) -> None:
        self.run = run

    def end(self, result: JobResult) -> None:
        if self.run is None or result.output is None:  # cancelled: nothing saved
            return
        result.files["manifest"] = [write_manifest(self.run, result)]


def file_observers(job: Job) -> list[Observer]:
    """The observers a job's output options ask for: ``log``, ``save_every``, ``figures``, ``manifest``."""
    o = job.options
    found: list[Observer] = []
    if o.get("log"):
        found.append(CsvLog(o["log"]))
    if o.get("save_every"):
        found.append(Snapshots(job, int(o["save_every"])))
    if o.get("figures"):
        found.append(Figures(o["figures"], o.get("figures_every")))
    if o.get("manifest"):
        found.append(Manifest())
    return found
