"""How a run ended: :class:`Outcome`, the one result of a scale, of a run and of each run of a batch.

Inside the package an end is a value, never an exception handed around:
the scale driver, :func:`~styletransfer.pipeline.optimize` and
:func:`~styletransfer.pipeline.optimize_batch` return an :class:`Outcome`
whatever happened.  A caller that wants an exception (the Python API, a
one-image helper) asks :meth:`Outcome.error` for it and raises it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor

from ..losses import Objective
from .progress import Diverged, Interrupted

#: ``complete``: the run used its evaluations, met its stopping rule or its time budget;
#: ``interrupted``: Ctrl-C or a stop asked for; ``diverged``: the loss or its gradient became NaN or infinite.
Status = Literal["complete", "interrupted", "diverged"]


@dataclass(frozen=True)
class Outcome:
    """How a run (or one scale of it) ended, and its image.

    Attributes:
        status: one of :data:`Status` (the words of :data:`styletransfer.events.STATUSES`).
        image: the evaluated image with the lowest exact loss (``complete``, and
            ``interrupted``: the best so far), or the last finite one (``diverged``).
            A complete run's is on the CPU; the others' where the run was.
        step: the evaluations (or Adam steps) done when it ended, counted over all scales.
        objective: for a ``complete`` outcome, the objective whose loss terms are the
            result's (the last scale's, in the precision it ended in); ``None`` otherwise,
            and for the instant preset, which has none.
        content: the content that goes with ``objective`` (its shape is the image's).
    """

    status: Status
    image: Tensor
    step: int
    objective: Objective | None = None
    content: Tensor | None = None

    def error(self) -> Interrupted | Diverged | None:
        """The exception a caller raises for this outcome: ``None`` when complete, else an
        :class:`Interrupted` or :class:`Diverged` carrying :attr:`image` and :attr:`step`."""
        if self.status == "interrupted":
            return Interrupted(self.image, self.step)
        if self.status == "diverged":
            return Diverged(self.image, self.step)
        return None
