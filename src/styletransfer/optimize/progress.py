"""How a run reports and stops: :class:`Progress` (one step's report, handed to a callback), :class:`Reporter`
(counts the steps, keeps the best image, asks ``should_stop``), :class:`Interrupted` and :class:`Diverged`.

The loop never prints or writes files.  On Ctrl-C (or a stop asked for) a
one-image optimiser raises :class:`Interrupted`, which carries the image so
far so that the caller can save it; :class:`Diverged` carries the last finite
image.  The scale driver turns both into an :class:`~styletransfer.optimize.outcome.Outcome`
at once; the Python API raises them again for its caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image
from torch import Tensor

from ..errors import RunError
from ..images import to_pil


@dataclass(frozen=True)
class Progress:
    """One step's report.

    Attributes:
        step: steps done so far, counted over all scales (1-based).
        total: the steps of the whole run.
        size: the long side of the image being optimised now.
        style, content, tv: the weighted loss terms at this step (before the update).
        loss: their sum.
        elapsed: seconds since the run started.
    """

    step: int
    total: int
    size: int
    style: float
    content: float
    tv: float
    loss: float
    elapsed: float
    _image: Tensor = field(repr=False, compare=False)

    def image(self) -> Image.Image:
        """The current image as a PIL image (a copy, made on demand)."""
        return to_pil(self._image)

    def tensor(self) -> Tensor:
        """The current image as a ``(1, 3, H, W)`` tensor (a copy)."""
        return self._image.detach().clone()


Callback = Callable[[Progress], None]

#: Asked before every evaluation: ``True`` ends the run with the best image so far.
StopCheck = Callable[[], bool]


class Interrupted(KeyboardInterrupt):
    """The run was interrupted (Ctrl-C, or a stop asked for); ``image`` holds the image at that moment."""

    def __init__(self, image: Tensor, step: int) -> None:
        super().__init__(f"interrupted at step {step}")
        self.image = image
        self.step = step


class Diverged(RunError):
    """The loss became NaN or infinite; ``image`` holds the last finite image."""

    def __init__(self, image: Tensor, step: int) -> None:
        super().__init__(f"the loss became NaN or infinite at step {step}")
        self.image = image
        self.step = step


class StopAsked(Exception):
    """Raised before an evaluation when the run's ``should_stop()`` says so."""


#: The fraction of an evaluation a budgeted run keeps free after its last one: the final scoring's forward pass.
SCORING_RESERVE = 0.5


@dataclass
class Reporter:
    """Counts steps over scales, turns loss terms into :class:`Progress`, asks whether to stop, and keeps the clock.

    Attributes:
        deadline: the ``time.perf_counter()`` by which the current scale must
            end (its share of a time budget), or ``None``.  An optimiser asks
            :meth:`out_of_time` before each evaluation and ends the scale,
            keeping its best image, when the next evaluation would pass it.
        evaluation_seconds: the last evaluation's duration at this scale
            (from one report to the next), ``None`` before the second report
            of a scale (the first includes building the targets).
    """

    total: int
    callback: Callback | None
    start: float = field(default_factory=time.perf_counter)
    step: int = 0
    should_stop: StopCheck | None = None
    deadline: float | None = None
    evaluation_seconds: float | None = None
    _last: float | None = field(default=None, repr=False)

    def check_stop(self) -> None:
        """Raise :class:`StopAsked` when ``should_stop()`` returns True (called before each evaluation)."""
        if self.should_stop is not None and self.should_stop():
            raise StopAsked

    def new_scale(self, deadline: float | None) -> None:
        """A scale begins: its deadline, and no evaluation time measured at its size yet."""
        self.deadline, self.evaluation_seconds, self._last = deadline, None, None

    def out_of_time(self) -> bool:
        """Whether one more evaluation would end after :attr:`deadline` (never before one is timed at this scale).

        One more evaluation and :data:`SCORING_RESERVE` of one more: the
        result's loss terms are computed once more after the run (a forward
        pass, about a third of an evaluation), so that a budgeted process ends
        within its budget plus the time to save.
        """
        if self.deadline is None:
            return False
        ahead = (1 + SCORING_RESERVE) * self.evaluation_seconds if self.evaluation_seconds is not None else 0.0
        return self._last is not None and time.perf_counter() + ahead > self.deadline

    def __call__(self, terms: dict[str, Tensor], image: Tensor) -> float:
        now = time.perf_counter()
        if self._last is not None:
            self.evaluation_seconds = now - self._last
        self._last = now
        self.step += 1
        values = {k: float(v.detach()) for k, v in terms.items()}
        loss = values["style"] + values["content"] + values["tv"]
        if self.callback is not None:
            self.callback(
                Progress(
                    step=self.step,
                    total=self.total,
                    size=max(image.shape[-2:]),
                    loss=loss,
                    elapsed=time.perf_counter() - self.start,
                    _image=image.detach(),
                    **values,
                )
            )
        return loss
