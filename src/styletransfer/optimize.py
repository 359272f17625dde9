"""The optimisation loop: gradient descent on the image itself.

The loop reports progress by calling back with a :class:`Progress`; it never
prints or writes files.  On Ctrl-C it raises :class:`Interrupted`, which
carries the current image so that the caller can save it.

Divergence: when the loss, its gradient or the image stops being finite, Adam
goes back to the last image whose loss was finite, halves its learning rate
once (with a :class:`LearningRateLowered` warning) and goes on; a second
divergence, or any divergence of L-BFGS, raises :class:`Diverged`, which
carries the last finite image.  No NaN image is ever returned.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from PIL import Image
from torch import Tensor

from .errors import RunError
from .images import to_pil
from .losses import Objective, smooth_total_variation


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


class LearningRateLowered(RuntimeWarning):
    """Adam diverged once and goes on from the last finite image with half its learning rate."""


class KerasAdam:
    """Adam with the update rule of Keras (and so of the seed).

    For gradient ``g`` at step ``t``::

        m = b1 m + (1 - b1) g
        v = b2 v + (1 - b2) g^2
        x = x - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)

    Keras adds ``eps`` to ``sqrt(v)`` *before* the bias correction, unlike
    ``torch.optim.Adam``; with the seed's large ``eps = 0.1`` the two differ.
    """

    def __init__(self, lr: float, beta1: float, beta2: float, eps: float) -> None:
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.t = 0
        self.m: Tensor | None = None
        self.v: Tensor | None = None

    def step(self, x: Tensor, grad: Tensor) -> None:
        """Update ``x`` in place."""
        if self.m is None or self.v is None:
            self.m = torch.zeros_like(x)
            self.v = torch.zeros_like(x)
        self.t += 1
        self.m.mul_(self.beta1).add_(grad, alpha=1 - self.beta1)
        self.v.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        alpha = self.lr * math.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        x.addcdiv_(self.m, self.v.sqrt().add_(self.eps), value=-alpha)

    def state(self) -> tuple[int, Tensor | None, Tensor | None]:
        """A copy of the moments and the step count, for :meth:`restore`."""
        return self.t, _clone(self.m), _clone(self.v)

    def restore(self, state: tuple[int, Tensor | None, Tensor | None]) -> None:
        """Go back to a :meth:`state` (the learning rate is kept)."""
        self.t, self.m, self.v = state


def _clone(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.clone()


class _StopAsked(Exception):
    """Raised before an evaluation when the run's ``should_stop()`` says so."""


@dataclass
class _Reporter:
    """Counts steps over scales, turns loss terms into :class:`Progress`, and asks whether to stop."""

    total: int
    callback: Callback | None
    start: float = field(default_factory=time.perf_counter)
    step: int = 0
    should_stop: StopCheck | None = None

    def check_stop(self) -> None:
        """Raise :class:`_StopAsked` when ``should_stop()`` returns True (called before each evaluation)."""
        if self.should_stop is not None and self.should_stop():
            raise _StopAsked

    def __call__(self, terms: dict[str, Tensor], image: Tensor) -> float:
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


def run_adam(
    objective: Objective,
    init: Tensor,
    steps: int,
    optimizer: KerasAdam,
    report: _Reporter,
) -> Tensor:
    """The seed's ``train_step`` ``steps`` times: a gradient step, then clip to [0, 1].

    Each step evaluates the loss of the current image and then updates it.
    When the loss or its gradient is not finite (the image itself is NaN, or
    the loss overflows), the image and the optimiser's moments go back to
    their state before the last update, the learning rate is halved (a
    :class:`LearningRateLowered` warning says so) and the run goes on; the
    repeated evaluation counts as a step.  This happens once per run.

    Returns:
        The image after the last update.

    Raises:
        Interrupted: on Ctrl-C or a stop asked for (``report.should_stop``),
            with the current image (the last finite one if the current one is not).
        Diverged: when the loss or its gradient is not finite a second time,
            with the last image whose loss was finite.
    """
    x = init.detach().clone().requires_grad_(True)
    last_good, last_state = init.detach().clone(), optimizer.state()
    lowered = False
    try:
        for _ in range(steps):
            report.check_stop()
            terms = objective.terms(x)
            total = terms["style"] + terms["content"] + terms["tv"]
            (grad,) = torch.autograd.grad(total, x)
            loss = report(terms, x)
            if not math.isfinite(loss) or not torch.isfinite(grad).all():
                if lowered:
                    raise Diverged(last_good, report.step)
                lowered = True
                optimizer.restore(last_state)
                optimizer.lr /= 2
                with torch.no_grad():
                    x.copy_(last_good)
                warnings.warn(
                    LearningRateLowered(
                        f"the loss became NaN or infinite at step {report.step}; going on from the last "
                        f"finite image with the learning rate halved to {optimizer.lr:g}"
                    ),
                    stacklevel=2,
                )
                continue
            last_good, last_state = x.detach().clone(), optimizer.state()
            with torch.no_grad():
                optimizer.step(x, grad)
                x.clamp_(0.0, 1.0)
    except (KeyboardInterrupt, _StopAsked):
        current = x.detach().clamp(0.0, 1.0)
        raise Interrupted(current if bool(torch.isfinite(current).all()) else last_good, report.step) from None
    if not bool(torch.isfinite(x).all()):  # the last update, never evaluated, went wrong
        raise Diverged(last_good, report.step)
    return x.detach()


def run_lbfgs(
    objective: Objective,
    init: Tensor,
    evaluations: int,
    report: _Reporter,
    *,
    lr: float = 1.0,
    history: int = 50,
    tv_eps: float = 0.01,
) -> Tensor:
    """L-BFGS (strong-Wolfe line search) on the image, inside the [0, 1] box.

    The optimised variable ``z`` is unconstrained and the image is
    ``x = clamp(z, 0, 1)``, so every evaluated image is valid.  The optimiser
    sees the seed objective with the L1 TV replaced by
    :func:`~styletransfer.losses.smooth_total_variation` (``tv_eps``); every
    report gives the *exact* seed terms of ``x``.

    Returns:
        The evaluated image with the lowest exact seed loss.

    Args:
        evaluations: objective evaluations (each one VGG forward and backward).
        lr: the scale of L-BFGS's first step along its search direction.
        history: the number of curvature pairs L-BFGS keeps.
        tv_eps: the Charbonnier epsilon of the smoothed TV (0: the exact L1 TV).

    Raises:
        Interrupted: on Ctrl-C or a stop asked for, with the best image so far.
        Diverged: when the loss is not finite, with the best image so far.
    """
    z = init.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    opt = torch.optim.LBFGS(
        [z],
        lr=lr,
        max_iter=evaluations,
        max_eval=evaluations,
        history_size=history,
        line_search_fn="strong_wolfe",
        tolerance_grad=0.0,
        tolerance_change=0.0,
    )
    best = (math.inf, init.detach().clone())
    done = report.step + evaluations

    def closure() -> Tensor:
        nonlocal best
        if report.step >= done:  # the strong-Wolfe line search may ask for more than max_eval
            raise _BudgetSpent
        report.check_stop()
        opt.zero_grad()
        x = z.clamp(0.0, 1.0)
        terms = objective.terms(x)
        loss = report(terms, x)
        if not math.isfinite(loss):
            raise Diverged(best[1], report.step)
        if loss < best[0]:
            best = (loss, x.detach().clone())
        tv = objective.weights.tv * smooth_total_variation(x, tv_eps) if tv_eps > 0 else terms["tv"]
        total = terms["style"] + terms["content"] + tv
        total.backward()  # type: ignore[no-untyped-call]
        return total

    try:
        opt.step(closure)  # type: ignore[no-untyped-call]
    except _BudgetSpent:
        pass
    except (KeyboardInterrupt, _StopAsked):
        raise Interrupted(best[1], report.step) from None
    return best[1]


class _BudgetSpent(Exception):
    """Raised inside the L-BFGS closure once the evaluation budget is used up."""
