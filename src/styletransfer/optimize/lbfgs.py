"""Projected L-BFGS on the image inside the [0, 1] box, for one image (:func:`run_lbfgs`) or several in lockstep
(:func:`run_lbfgs_batch`), both driving the same state machine (:class:`LbfgsRun`) with one :class:`LbfgsConfig`.

Any divergence raises :class:`~styletransfer.optimize.progress.Diverged` with
the last finite image: no NaN image is ever returned.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor

from ..losses import BatchObjective, Objective, smooth_total_variation, total_variations
from ..presets import Preset
from .lowpass import LowPassBoost
from .outcome import Outcome
from .progress import Diverged, Interrupted, Reporter, StopAsked

#: L-BFGS's curvature pairs ``(s, y, 1 / s.y)``, oldest first (see :func:`run_lbfgs`).
Curvature = list[tuple[Tensor, Tensor, float]]


@dataclass(frozen=True)
class LbfgsConfig:
    """How :func:`run_lbfgs` runs: the same for every image of a batch and for both runs of a bf16 scale.

    Attributes:
        lr: the first trial step along each direction (on the first
            iteration, scaled by ``min(1, 1 / |m g|_1)`` as in
            ``torch.optim.LBFGS``).
        history: the number of curvature pairs kept.
        tv_eps: the Charbonnier epsilon of the smoothed TV (0: the exact L1 TV).
        stop_rtol, stop_window: the early-stopping test of :func:`run_lbfgs`
            (``stop_window = 0`` turns it off).
        precondition: ``P`` in ``H_0 = tau P`` (a :class:`LowPassBoost`); ``None``: ``P = I``.
    """

    lr: float = 1.0
    history: int = 50
    tv_eps: float = 0.01
    stop_rtol: float = 0.0
    stop_window: int = 0
    precondition: LowPassBoost | None = None

    @classmethod
    def from_preset(cls, preset: Preset, *, history: int, precondition: LowPassBoost | None) -> LbfgsConfig:
        """The preset's L-BFGS (``lr``, ``tv_eps``, ``stop_rtol``, ``stop_window``) with ``history`` pairs
        (what fits the preset's ``history_mib`` at a scale) and ``precondition``."""
        return cls(preset.lr, history, preset.tv_eps, preset.stop_rtol, preset.stop_window, precondition)


def run_lbfgs(
    objective: Objective,
    init: Tensor,
    evaluations: int,
    report: Reporter,
    config: LbfgsConfig = LbfgsConfig(),
    *,
    curvature: Curvature | None = None,
) -> Tensor:
    """Projected L-BFGS on the image, with the bounds ``0 <= x <= 1`` kept exactly.

    The image ``x`` itself is the variable and every iterate lies in the box
    ``B = [0, 1]^n``.  At an iterate ``x`` with gradient ``g``, a channel
    value is *active* when it sits on a bound and the gradient pushes it out
    of the box::

        A = {i : (x_i <= 0 and g_i > 0) or (x_i >= 1 and g_i < 0)},   F = not A

    Only the free values ``F`` move: with ``m`` the indicator of ``F`` and
    ``H`` the L-BFGS inverse-Hessian estimate (two-loop recursion over the last
    ``config.history`` pairs ``s = x' - x``, ``y = g' - g``, started from
    ``H_0 = tau P`` with ``tau = s.y / y.P y`` of the newest pair, ``P`` the
    ``config.precondition`` operator or the identity), the direction is::

        d = -m * H (m * g),    so  g.d = -(m g).H(m g) < 0

    and the step is taken on the projected arc ``x(t) = clamp(x + t d, 0, 1)``
    from ``t = config.lr`` by :func:`_projected_wolfe`: Armijo's condition on the arc::

        f(x(t)) <= f(x) + 1e-4 * g.(x(t) - x)

    (shrinking ``t`` by safeguarded quadratic interpolation until it holds) and
    Wolfe's curvature condition ``g(x(t)).s >= 0.9 g.s`` (growing ``t`` by 4
    while the slope is still that steep).  A pair is kept only when
    ``s.y > 1e-10`` (positive curvature, as in ``torch.optim.LBFGS``), so
    ``H`` stays positive definite.  A value on a bound whose gradient points
    into the box is free, so it moves off the bound on the next step: no
    value is stuck at 0 or 1, unlike ``x = clamp(z, 0, 1)`` whose gradient
    is zero outside the box.  (This is the projected quasi-Newton scheme of
    Kim, Sra & Dhillon, 2010, a simplification of L-BFGS-B without its
    generalised Cauchy point.)

    The optimiser sees the seed objective with the L1 TV replaced by
    :func:`~styletransfer.losses.smooth_total_variation` (``config.tv_eps``); every
    report gives the *exact* seed terms of ``x``.

    Stopping: after ``evaluations`` evaluations (a hard cap, also inside a
    line search), when the next evaluation would pass ``report.deadline``
    (:meth:`Reporter.out_of_time`), or earlier when the best exact loss ``b_k`` after ``k``
    evaluations has fallen by less than a fraction ``rtol = config.stop_rtol`` over the
    last ``w = config.stop_window`` evaluations::

        k > w  and  b_{k - w} - b_k <= rtol * b_k

    (``w = 0`` turns the test off), or at a point where the
    projected gradient is zero.

    Returns:
        The evaluated image with the lowest exact seed loss.

    Args:
        evaluations: the most objective evaluations (each one VGG forward
            and backward).
        config: the step, the history, the smoothed TV, the stopping test and the preconditioner.
        curvature: the pairs to start from (``None``: none).  The list is
            updated in place as the run goes, so a later run on the same
            problem (the fp32 finish of a bf16 run) can start from the
            curvature this one learnt instead of from steepest descent.

    Raises:
        Interrupted: on Ctrl-C or a stop asked for, with the best image so far.
        Diverged: when the loss or its gradient is not finite, with the best
            image so far.
    """
    run = LbfgsRun(init, evaluations, report, config, curvature=curvature)
    tv_weight, tv_eps = objective.weights.tv, config.tv_eps
    try:
        point = run.trial()
        while point is not None:
            report.check_stop()
            xr = point.detach().requires_grad_(True)
            terms = objective.terms(xr)
            tv = tv_weight * smooth_total_variation(xr, tv_eps) if tv_eps > 0 else terms["tv"]
            point = run.tell(terms, terms["style"] + terms["content"] + tv, xr)
    except (KeyboardInterrupt, StopAsked):
        raise Interrupted(run.best, report.step) from None
    return run.best


def run_lbfgs_batch(
    objective: BatchObjective,
    inits: Sequence[Tensor],
    evaluations: int | Sequence[int],
    reports: Sequence[Reporter],
    config: LbfgsConfig = LbfgsConfig(),
    *,
    curvature: Sequence[Curvature] | None = None,
) -> list[Outcome]:
    """:func:`run_lbfgs` for several images at once, each with its own L-BFGS state and line search.

    Image ``b`` runs its own :class:`LbfgsRun` (its curvature pairs, its line
    search, its cap, its stopping rule) with its own ``reports[b]``.  Each
    round stacks the trial points of the runs still going into one batch,
    evaluates :class:`~styletransfer.losses.BatchObjective` on it in one
    forward and backward pass of ``sum_b f_b`` (whose gradient in ``x_b`` is
    ``grad f_b``, the images' losses being independent), and hands each run
    its own loss and gradient.  A run that has ended leaves the batch; the
    others go on.  Each image gets the result :func:`run_lbfgs` would give it
    alone, up to the rounding of batched convolutions.  (``torch.optim.LBFGS``
    on the stacked batch would instead treat it as one vector: one step
    length and one curvature model for all.)

    ``evaluations`` is every run's cap, or one cap per run; ``curvature``,
    when given, one curvature list per run (as in :func:`run_lbfgs`).

    Returns:
        Per image, its :class:`~styletransfer.optimize.outcome.Outcome` (no
        objective attached): ``complete`` with its best image; ``diverged``
        with its best image when its loss or gradient was not finite (it leaves
        the batch, the others go on); or, when a stop was asked for
        (``reports[b].should_stop``, or Ctrl-C), ``interrupted`` with its best
        image so far for every run that had not ended.
    """
    budgets = [evaluations] * len(inits) if isinstance(evaluations, int) else list(evaluations)
    memories: Sequence[Curvature | None] = [None] * len(inits) if curvature is None else curvature
    runs = [LbfgsRun(x0, n, r, config, curvature=m) for x0, n, r, m in zip(inits, budgets, reports, memories)]
    tv_eps = config.tv_eps
    results: list[Outcome | None] = [None] * len(runs)
    points = [run.trial() for run in runs]
    try:
        while active := [i for i, p in enumerate(points) if p is not None]:
            for i in active:
                reports[i].check_stop()
            x = torch.cat([cast(Tensor, points[i]) for i in active]).requires_grad_(True)
            terms = objective.terms(x, active)
            tv = objective.weights.tv * total_variations(x, tv_eps) if tv_eps > 0 else terms["tv"]
            total = terms["style"] + terms["content"] + tv
            (grad,) = torch.autograd.grad(total.sum(), x)
            for j, i in enumerate(active):
                own = {k: v[j] for k, v in terms.items()}
                try:
                    points[i] = runs[i].tell_gradient(
                        own, float(total[j].detach()), grad[j : j + 1].clone(), x[j : j + 1]
                    )
                except Diverged as exc:
                    results[i], points[i] = Outcome("diverged", exc.image, exc.step), None
    except (KeyboardInterrupt, StopAsked):
        for i, p in enumerate(points):
            if p is not None:
                results[i] = Outcome("interrupted", runs[i].best, reports[i].step)
    return [Outcome("complete", run.best, run.report.step) if r is None else r for run, r in zip(runs, results)]


class LbfgsRun:
    """One image's projected L-BFGS (:func:`run_lbfgs`) as a state machine driven from outside.

    The driver asks for the next trial point (:meth:`trial`), evaluates the
    objective there, and hands back the exact seed terms and the smoothed
    total whose gradient the optimiser follows (:meth:`tell`), which returns
    the next trial point, or ``None`` once the run has ended (the cap, the
    stopping rule, or a stationary point).  :func:`run_lbfgs` drives one;
    :func:`run_lbfgs_batch` drives several in lockstep, one batched evaluation
    for all of them.  The arithmetic is the same either way.

    Attributes:
        best: the evaluated image with the lowest exact seed loss (the start until one is evaluated).
    """

    def __init__(
        self,
        init: Tensor,
        evaluations: int,
        report: Reporter,
        config: LbfgsConfig,
        *,
        curvature: Curvature | None = None,
    ) -> None:
        x = init.detach().clone(memory_format=torch.contiguous_format).clamp_(0.0, 1.0)
        self.best = x.clone()
        self.best_loss = math.inf
        self.report = report
        self.done = report.step + evaluations
        self.config = config
        self.bests: list[float] = []  # the best exact loss after each evaluation
        self._iterations = _projected_lbfgs(
            x, lr=config.lr, history=config.history, precondition=config.precondition, curvature=curvature
        )
        self._point: Tensor | None = None

    def trial(self) -> Tensor | None:
        """The first point to evaluate (``None`` when the budget is 0)."""
        return self._next(None)

    def _next(self, sent: tuple[float, Tensor] | None) -> Tensor | None:
        if self.report.step >= self.done or self.report.out_of_time():
            self._end()
            return None
        try:
            self._point = next(self._iterations) if sent is None else self._iterations.send(sent)
        except StopIteration:
            self._end()
        return self._point

    def _end(self) -> None:
        self._iterations.close()
        self._point = None

    def tell(self, terms: dict[str, Tensor], total: Tensor, image: Tensor) -> Tensor | None:
        """Take the evaluation at the last trial point; the next trial point, or ``None`` when the run has ended.

        Args:
            terms: the exact seed terms at the point (reported, and used to keep the best image).
            total: the smoothed objective the optimiser follows, a scalar tensor differentiable in ``image``.
            image: the point, with ``requires_grad``.

        Raises:
            Diverged: when the loss or its gradient is not finite, with the best image so far.
        """
        (grad,) = torch.autograd.grad(total, image)
        return self.tell_gradient(terms, float(total.detach()), grad, image)

    def tell_gradient(self, terms: dict[str, Tensor], total: float, grad: Tensor, image: Tensor) -> Tensor | None:
        """:meth:`tell` with the gradient already computed (a batch's slice)."""
        assert self._point is not None, "tell() without a trial point"
        loss = self.report(terms, image)
        if not math.isfinite(loss):
            raise Diverged(self.best, self.report.step)
        if loss < self.best_loss:
            self.best_loss, self.best = loss, self._point.detach().clone()
        self.bests.append(self.best_loss)
        if not bool(torch.isfinite(grad).all()):
            raise Diverged(self.best, self.report.step)
        k, w = len(self.bests), self.config.stop_window
        if w > 0 and k > w and self.bests[k - 1 - w] - self.bests[-1] <= self.config.stop_rtol * self.bests[-1]:
            self._end()
            return None
        return self._next((total, grad))


#: What the iterations yield (a point to evaluate) and are sent back (the objective and its gradient there).
_Iterations = Generator[Tensor, tuple[float, Tensor], None]


def _projected_lbfgs(
    x: Tensor,
    *,
    lr: float,
    history: int,
    precondition: LowPassBoost | None = None,
    curvature: Curvature | None = None,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_line_evaluations: int = 25,
) -> _Iterations:
    """The iterations of :func:`run_lbfgs` as a generator: yields each point to evaluate, is sent ``(f, g)`` there.

    It returns at a stationary point; the driver (:class:`LbfgsRun`) closes it
    when the budget or the stopping rule ends the run.  ``curvature``, when
    given, is the pair list it starts from and keeps up to date in place.
    """
    f, g = yield x
    pairs: Curvature = [] if curvature is None else curvature
    del pairs[:-history]
    gamma = _scale(pairs[-1], precondition) if pairs else 1.0  # H_0 = gamma P
    failures = 0
    while True:
        free = ~(((x <= 0) & (g > 0)) | ((x >= 1) & (g < 0)))
        gf = g * free
        if not bool(gf.any()):
            return  # the projected gradient is zero: a KKT point
        # Two-loop recursion: d = -H gf, then masked to the free values.
        q = gf.clone()
        alphas = []
        for s, y, rho in reversed(pairs):
            a = rho * float(torch.vdot(s.flatten(), q.flatten()))
            alphas.append(a)
            q.add_(y, alpha=-a)
        q = q.mul_(gamma) if precondition is None or not pairs else precondition(q).mul_(gamma)
        for (s, y, rho), a in zip(pairs, reversed(alphas)):
            b = rho * float(torch.vdot(y.flatten(), q.flatten()))
            q.add_(s, alpha=a - b)
        d = q.neg_().mul_(free)
        gtd = float(torch.vdot(g.flatten(), d.flatten()))
        if not gtd < 0:  # rounding made H's direction useless: steepest descent on the free values
            pairs.clear()
            gamma = 1.0
            d = -gf
            gtd = -float(torch.vdot(gf.flatten(), gf.flatten()))
        t = lr if pairs else lr * min(1.0, 1.0 / float(gf.abs().sum()))
        found = yield from _projected_wolfe(x, f, g, d, gtd, t, c1=c1, c2=c2, max_evaluations=max_line_evaluations)
        if found is None:
            failures += 1
            pairs.clear()
            gamma = 1.0
            if failures >= 2:
                return  # no decrease even along the projected gradient: as far as float32 goes
            continue
        failures = 0
        x_new, f_new, g_new = found
        s = x_new - x
        y = g_new - g
        sy = float(torch.vdot(s.flatten(), y.flatten()))
        if sy > 1e-10:
            if len(pairs) >= history:
                pairs.pop(0)
            pairs.append((s, y, 1.0 / sy))
            gamma = _scale(pairs[-1], precondition)
        x, f, g = x_new, f_new, g_new


def _scale(pair: tuple[Tensor, Tensor, float], precondition: LowPassBoost | None) -> float:
    """``tau = s.y / y.P y`` of a curvature pair: the scale of ``H_0 = tau P`` (``P = I`` without a preconditioner)."""
    _, y, rho = pair
    py = y if precondition is None else precondition(y)
    return 1.0 / (rho * float(torch.vdot(y.flatten(), py.flatten())))


def _projected_wolfe(
    x: Tensor,
    f: float,
    g: Tensor,
    d: Tensor,
    gtd: float,
    t: float,
    *,
    c1: float,
    c2: float,
    max_evaluations: int,
) -> Generator[Tensor, tuple[float, Tensor], tuple[Tensor, float, Tensor] | None]:
    """A weak-Wolfe line search on the projected arc ``x(t) = clamp(x + t d, 0, 1)``.

    With ``s(t) = x(t) - x``, a step is *acceptable* when Armijo's condition
    holds, ``f(x(t)) <= f + c1 g.s(t)``, and *good* when the slope has also
    flattened, ``g(x(t)).s(t) >= c2 g.s(t)`` (Wolfe's curvature condition, which
    makes ``s.y > 0``).  From the trial ``t``: an unacceptable step shrinks
    ``t`` (safeguarded quadratic interpolation with slope ``gtd`` at 0, or
    bisection once the step is bracketed); an acceptable step that is not good
    grows ``t`` by 4 until it is good or a larger step fails, then the best
    acceptable step is taken.  Returns ``(x(t), f, g)`` of the step taken, or
    ``None`` when no acceptable step was found.  A generator like :func:`_projected_lbfgs`.
    """
    accepted: tuple[Tensor, float, Tensor] | None = None
    t_hi = math.inf
    for _ in range(max_evaluations):
        x_new = (x + t * d).clamp_(0.0, 1.0)
        f_new, g_new = yield x_new
        step = (x_new - x).flatten()
        gain = float(torch.vdot(g.flatten(), step))
        if not f_new <= f + c1 * gain or (accepted is not None and f_new >= accepted[1]):
            if accepted is not None:
                return accepted  # overshot after a good-enough step: keep that one
            t_hi = t
            denom = 2.0 * (f_new - f - gtd * t)
            t_q = -gtd * t * t / denom if denom > 0 and math.isfinite(denom) else 0.5 * t
            t = min(max(t_q, 0.1 * t), 0.5 * t)
            continue
        accepted = (x_new, f_new, g_new)
        if float(torch.vdot(g_new.flatten(), step)) >= c2 * gain or t_hi < math.inf:
            return accepted
        if bool(torch.equal(x_new, (x + 4 * t * d).clamp_(0.0, 1.0))):
            return accepted  # every moving value is already on a bound
        t = 4 * t
    return accepted
