"""One scale of a run, for one image or a batch: the optimiser, bf16 and its fp32 finish, the stop and the clock.

Single runs (:func:`~styletransfer.pipeline.optimize`), batched runs
(:func:`~styletransfer.pipeline.optimize_batch`) and video frames all run
each scale through :func:`run_scale`, so the precision switch, the stopping
rule and the time budget are decided in one place.  A time budget is split
over the scales of a coarse-to-fine run by :func:`scale_deadlines` before the
first one starts.  Each image's scale ends in an :class:`~styletransfer.optimize.Outcome`,
whatever ended it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

from torch import Tensor

from .losses import BatchObjective, Objective
from .optimize import (
    Curvature,
    Diverged,
    Interrupted,
    KerasAdam,
    LbfgsConfig,
    Outcome,
    Reporter,
    run_adam,
    run_lbfgs,
    run_lbfgs_batch,
)
from .presets import Preset

#: Under bf16, L-BFGS switches to fp32 once its best loss falls by less than this fraction over
#: the preset's ``stop_window``: about where bf16's rounding flattens the loss curve
#: (docs/benchmarks.md, "The fp32 finish keeps its curvature").
BF16_SWITCH_RTOL = 0.005


@dataclass(frozen=True)
class Stage:
    """One image's objective at a scale.

    Attributes:
        objective: the seed objective at this scale (its loss terms are the result's).
        optimised: what the optimiser minimises: ``objective``, or it with a front end's extra term (video's).
        content: the content at this scale (its shape is the scale's).
    """

    objective: Objective
    optimised: Objective
    content: Tensor


@dataclass(frozen=True)
class ScaleTask:
    """One image's part of a scale: its objective at a precision, where it starts, and its reporter."""

    build: Callable[[str], Stage]
    start: Tensor
    report: Reporter


def first_rtol(stop_rtol: float, precision: str) -> float:
    """The stopping fraction of a scale's first L-BFGS run: ``max(stop_rtol, BF16_SWITCH_RTOL)`` under bf16."""
    return max(stop_rtol, BF16_SWITCH_RTOL) if precision == "bf16" else stop_rtol


def scale_deadlines(
    start: float, budget: float | None, steps: Sequence[int], costs: Sequence[float]
) -> list[float | None]:
    """Each scale's deadline (``time.perf_counter()`` values) under a budget of ``budget`` seconds from ``start``.

    The budget is split in proportion to each scale's time at its cap,
    ``steps_i * costs_i`` with ``costs_i`` the time of one evaluation at
    scale ``i`` (any unit: the dry run's cost model,
    :func:`~styletransfer.pipeline.cost.evaluation_costs`, which counts the
    dearer pixels of large scales and of tiles), so each scale gets about the
    same share of its evaluations.  The deadlines are cumulative: a scale that
    ends early (its stopping rule) leaves its time to the next ones.  So a
    coarse-to-fine run does not spend the whole budget at its first scale.
    No budget: no deadlines.
    """
    if budget is None:
        return [None] * len(steps)
    weights = [n * c for n, c in zip(steps, costs)]
    total = sum(weights) or 1.0
    out: list[float | None] = []
    spent = 0.0
    for weight in weights:
        spent += weight
        out.append(start + budget * spent / total)
    return out


def _alone(run: Callable[[], Tensor], report: Reporter) -> Outcome:
    """One image's optimiser run (:func:`run_lbfgs`, :func:`run_adam`), the end it raises turned into an :class:`Outcome`."""
    try:
        return Outcome("complete", run(), report.step)
    except Interrupted as end:
        return Outcome("interrupted", end.image, end.step)
    except Diverged as end:
        return Outcome("diverged", end.image, end.step)


def _lbfgs(
    stages: Sequence[Stage],
    starts: Sequence[Tensor],
    caps: Sequence[int],
    reports: Sequence[Reporter],
    config: LbfgsConfig,
    curvature: Sequence[Curvature],
) -> list[Outcome]:
    """Projected L-BFGS on each image: :func:`run_lbfgs` for one, :func:`run_lbfgs_batch` for several."""
    if len(stages) == 1:
        run = partial(run_lbfgs, stages[0].optimised, starts[0], caps[0], reports[0], config, curvature=curvature[0])
        return [_alone(run, reports[0])]
    return run_lbfgs_batch(
        BatchObjective([s.optimised for s in stages]), starts, caps, reports, config, curvature=curvature
    )


def run_scale(
    tasks: Sequence[ScaleTask],
    preset: Preset,
    precision: str,
    steps: int,
    lbfgs: LbfgsConfig,
    *,
    deadline: float | None = None,
) -> list[Outcome]:
    """Optimise each task's image at one scale, at most ``steps`` evaluations each, by ``deadline`` if given.

    L-BFGS (one image alone, or several in one batch, each with its own
    state, all run as ``lbfgs`` says): under ``precision="bf16"`` it runs in
    bf16 until its loss falls by less than :data:`BF16_SWITCH_RTOL` (or
    ``lbfgs.stop_rtol``, if larger) over ``lbfgs.stop_window``, then goes on in
    fp32 from its best image for the evaluations left, with ``lbfgs``'s own
    stopping rule (counted afresh) and the curvature pairs the bf16 run learnt.  A
    run out of time gets no fp32 finish.  Adam (one image only) runs its
    ``steps`` or until the deadline.

    Returns:
        Per task, its :class:`Outcome` (its image on the device); a complete one
        carries the objective and content of the stage it was last optimised
        under (the fp32 one after a finish), to report its loss terms.
    """
    reports = [t.report for t in tasks]
    for r in reports:
        r.new_scale(deadline)
    stages = [t.build(precision) for t in tasks]
    starts = [t.start for t in tasks]
    if preset.optimizer != "lbfgs":
        if len(tasks) != 1:
            raise ValueError("only L-BFGS runs share a batch")
        adam = KerasAdam(preset.lr, preset.beta1, preset.beta2, preset.eps)
        outcomes = [_alone(partial(run_adam, stages[0].optimised, starts[0], steps, adam, reports[0]), reports[0])]
        return _scored(outcomes, stages)
    memories: list[Curvature] = [[] for _ in tasks]  # per image, shared by the bf16 run and its fp32 finish
    begun = [r.step for r in reports]

    def solve(
        which: Sequence[int], starts: Sequence[Tensor], caps: Sequence[int], config: LbfgsConfig
    ) -> list[Outcome]:
        chosen = [stages[j] for j in which]
        return _lbfgs(chosen, starts, caps, [reports[j] for j in which], config, [memories[j] for j in which])

    everyone = range(len(tasks))
    first = replace(lbfgs, stop_rtol=first_rtol(lbfgs.stop_rtol, precision))
    outcomes = solve(everyone, starts, [steps] * len(tasks), first)
    if precision == "bf16":  # stalled or converged in bf16: the evaluations left go on in fp32
        left = [steps - (reports[j].step - begun[j]) for j in everyone]
        again = [
            j for j in everyone if outcomes[j].status == "complete" and left[j] > 0 and not reports[j].out_of_time()
        ]
        if again:
            for j in again:
                stages[j] = tasks[j].build("fp32")
                reports[j].new_scale(deadline)
            finished = solve(again, [outcomes[j].image for j in again], [left[j] for j in again], lbfgs)
            for j, out in zip(again, finished):
                outcomes[j] = out
    return _scored(outcomes, stages)


def _scored(outcomes: Sequence[Outcome], stages: Sequence[Stage]) -> list[Outcome]:
    """The complete outcomes with their stage's objective and content attached (the others as they are)."""
    return [
        replace(o, objective=s.objective, content=s.content) if o.status == "complete" else o
        for o, s in zip(outcomes, stages)
    ]


def planned_evaluations(seconds: float, per_evaluation: float, cap: int) -> int:
    """The evaluations ``seconds`` buy at ``per_evaluation`` seconds each, at most ``cap`` (at least 1)."""
    return max(1, min(cap, math.floor(seconds / per_evaluation))) if per_evaluation > 0 else cap
