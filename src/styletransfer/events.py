"""What a job's observers hear: its start, every evaluation, each scale, its end.

:class:`Observer` is the interface (the CLI's progress bar, the file
observers of :mod:`styletransfer.observers`, the studio's queue and
benchmarks implement it); :class:`JobStart` and :class:`JobResult` are what
it is told.  Torch-free.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .job import Job

if TYPE_CHECKING:  # the engine's types, without importing torch here
    from PIL.Image import Image
    from torch import Tensor

    from .optimize import Progress
    from .pipeline import Inputs, Settings

#: The outcome of a job: ``complete``; ``interrupted`` (stopped, the image so far
#: saved); ``cancelled`` (stopped before the first evaluation, nothing saved);
#: ``diverged`` (the loss stayed NaN or infinite, the last finite image saved).
STATUSES = ("complete", "interrupted", "cancelled", "diverged")


# --- Observers ----------------------------------------------------------------------------------


@dataclass
class JobResult:
    """How a job ended.

    Attributes:
        status: one of :data:`STATUSES`.
        image: the final picture (``None`` when cancelled).
        output: the path it was saved to, if any.
        steps: evaluations (or Adam steps) done.
        terms: the result's loss terms under the run's objective (``style``,
            ``content``, ``tv``, ``total``), or ``None`` when cancelled or for the instant
            preset (a feed-forward network has no objective).
        seconds: wall time from the start of the job.
        error: the reason, for ``diverged``.
        files: what the observers wrote besides the image, by kind
            (``"manifest"``, ``"figures"``).
    """

    status: str
    image: Image | None = None
    output: Path | None = None
    steps: int = 0
    terms: dict[str, float] | None = None
    seconds: float = 0.0
    error: str | None = None
    files: dict[str, list[Path]] = field(default_factory=dict)


@dataclass
class JobStart:
    """What observers learn as the run starts: the job, its resolved settings, its inputs, its step budget.

    ``inputs`` become the inputs the run optimises towards before its first
    evaluation (with a ``fine_style``, new ones with the mixed style images).
    """

    job: Job
    settings: Settings
    inputs: Inputs
    total: int
    started: float = field(default_factory=time.perf_counter)


class Observer:
    """Hears a job's events; override what you need.  Observers must not raise for a normal run.

    Order: :meth:`start`, then :meth:`progress` after every evaluation (and
    :meth:`scale` as each scale ends), then :meth:`end` once the image is saved
    (also when the run was stopped or diverged).  :meth:`close` always comes last.
    """

    def start(self, run: JobStart) -> None:
        """The run is about to optimise."""

    def progress(self, p: Progress) -> None:
        """One evaluation done: ``p`` is a :class:`~styletransfer.optimize.Progress`."""

    def scale(self, size: int, image: Tensor) -> None:
        """A scale of a coarse-to-fine run ended with ``image`` (a CPU tensor)."""

    def end(self, result: JobResult) -> None:
        """The run ended and its image, if any, is saved."""

    def close(self) -> None:
        """Release what the observer holds (files, bars); called whatever happened."""
