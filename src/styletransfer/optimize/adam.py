"""The seed's optimiser: Adam with Keras' update rule on the image, clipped to [0, 1] after every step.

Divergence: when the loss, its gradient or the image stops being finite, Adam
goes back to the last image whose loss was finite, halves its learning rate
once (with a :class:`LearningRateLowered` warning) and goes on; a second
divergence raises :class:`~styletransfer.optimize.progress.Diverged`.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from ..losses import Objective
from .progress import Diverged, Interrupted, Reporter, StopAsked


class LearningRateLowered(RuntimeWarning):
    """Adam diverged once and goes on from the last finite image with half its learning rate."""


def _clone(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.clone()


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


def run_adam(
    objective: Objective,
    init: Tensor,
    steps: int,
    optimizer: KerasAdam,
    report: Reporter,
) -> Tensor:
    """The seed's ``train_step`` ``steps`` times: a gradient step, then clip to [0, 1].

    Fewer when the next step would pass ``report.deadline`` (a time budget,
    :meth:`Reporter.out_of_time`): the run then ends with the image so far.

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
            if report.out_of_time():
                break
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
    except (KeyboardInterrupt, StopAsked):
        current = x.detach().clamp(0.0, 1.0)
        raise Interrupted(current if bool(torch.isfinite(current).all()) else last_good, report.step) from None
    if not bool(torch.isfinite(x).all()):  # the last update, never evaluated, went wrong
        raise Diverged(last_good, report.step)
    return x.detach()
