"""The dry run's estimate, before any work: the scales, the evaluations, the time and the memory (:func:`plan`).

``--dry-run`` and the studio's estimate show it.  The time of one evaluation
is measured at a small size on this machine and scaled to each scale's pixels
(:mod:`.cost`).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import replace
from typing import Any, cast

import torch

from ..driver import planned_evaluations, scale_deadlines
from ..images import resize, scaled_shape
from ..memory import run_bytes
from ..tiling.grid import split
from .cost import scaled_seconds, tiled_seconds
from .inputs import Inputs, check_inputs, shape_at
from .objective import build_objective
from .run import instant_image
from .settings import Settings, stage_sizes, stage_steps
from .tiles import run_tiles

#: The long side of the probe whose measured evaluation time is scaled to every scale of the run.
PROBE_SIDE = 256


def _instant_seconds(settings: Settings, inputs: Inputs, side: int, repeats: int = 3) -> float:
    """The fastest of ``repeats`` instant passes (:func:`instant_image`) at long side ``side``, after one warm-up."""
    p = replace(settings.preset, size=side)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        instant_image(inputs, replace(settings, preset=p))
        if i >= 1:
            times.append(time.perf_counter() - start)
    return min(times)


def _evaluation_seconds(settings: Settings, inputs: Inputs, side: int, repeats: int = 3) -> float:
    """The fastest of ``repeats`` evaluations (forward, backward, losses) at long side ``side``, after two warm-ups.

    The fastest, not the mean: other work on the machine only ever adds time.
    Two warm-ups: oneDNN's bf16 kernels are still being set up in the second
    evaluation of a process (docs/benchmarks.md, "bf16, the fp32 finish and large images").
    """
    c = resize(inputs.content_pixels, shape_at(inputs.content_pixels, side)).to(settings.device)
    s = [resize(t, shape_at(t, side)).to(settings.device) for t in inputs.style_pixels]
    objective = build_objective(settings, c, s)
    x = c.clone().requires_grad_(True)
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        terms = objective.terms(x)
        (terms["style"] + terms["content"] + terms["tv"]).backward()  # type: ignore[no-untyped-call]
        if settings.device.type == "cuda":
            torch.cuda.synchronize(settings.device)
        if i >= 2:  # the first two warm up
            times.append(time.perf_counter() - start)
    return min(times)


def plan(inputs: Inputs, settings: Settings) -> dict[str, Any]:
    """What the run will do and cost, without optimising: ``--dry-run``.

    The time of one evaluation is measured at a small size (:data:`PROBE_SIDE`,
    or the run's own size when smaller) on this machine and scaled to each scale's pixels (:func:`scaled_seconds`);
    each scale adds one evaluation for its targets.  The peak memory is the memory guard's estimate
    (:func:`~styletransfer.memory.run_bytes`), with the tiles each scale gets
    (:func:`~styletransfer.pipeline.tiles.run_tiles`); a tiled scale's evaluation is
    :func:`tiled_seconds`.  The evaluation counts are
    the budget: a run stopped by a convergence test takes fewer.

    Under bf16 with L-BFGS, a scale whose budget ``N`` exceeds the stopping
    window ``w`` may switch to its fp32 finish (:func:`optimize`) as early as
    after ``w + 1`` evaluations, so its time is bounded by ``(w + 2) t_bf16 +
    (N - w) t_fp32`` (each part computes its targets once), with ``t_fp32``
    probed as well.

    Returns:
        ``{"scales": [[H, W], ...], "evaluations": [n, ...], "seconds": s, "peak_bytes": b}``,
        plus ``"seconds_per_evaluation"`` at each scale, ``"fp32_finish_seconds_per_evaluation"``
        at each scale (``None`` where the scale cannot switch to an fp32
        finish), ``"tiles"``: per scale ``None`` (whole) or ``{"side": px, "count": n}``, ``"device"``, and ``"stop_rule"``: ``{"rtol": r, "window": w}``
        when a stopping rule may end the run before those evaluations (then
        they and ``seconds`` are upper bounds), else ``None``; ``"budget"``:
        under a time budget ``{"seconds": B, "evaluations": [n, ...]}``, the
        evaluations each scale's share of ``B`` buys (``seconds`` is then at
        most ``B``), else ``None``.
    """
    p = settings.preset
    check_inputs(inputs, settings)
    h, w = inputs.content_pixels.shape[2], inputs.content_pixels.shape[3]
    shapes = [scaled_shape(h, w, size) for size in stage_sizes(p)]
    steps = stage_steps(p)
    side = min(PROBE_SIDE, p.size)  # a small run is probed at its own size
    probe_pixels = math.prod(scaled_shape(h, w, side))
    timed = _instant_seconds if p.instant else _evaluation_seconds

    tiles = run_tiles(inputs, settings)
    layers = [*p.style_layers, *p.content_layers]

    def per_evaluation(s: Settings) -> list[float]:
        probe = timed(s, inputs, side)
        return [
            scaled_seconds(probe, probe_pixels, hh * ww, s.precision, s.device)
            if tile is None
            else tiled_seconds(probe, probe_pixels, hh, ww, tile, layers, s.precision, s.device)
            for (hh, ww), tile in zip(shapes, tiles)
        ]

    per_eval = per_evaluation(settings)
    switches = [settings.precision == "bf16" and p.stops_early and n > p.stop_window + 1 for n in steps]
    finish: list[float | None] = [None] * len(shapes)
    if any(switches):
        exact = per_evaluation(replace(settings, precision="fp32"))
        finish = [t if switch else None for t, switch in zip(exact, switches)]
    seconds = 0.0
    for n, t, t32 in zip(steps, per_eval, finish):
        first = n if t32 is None else p.stop_window + 1
        seconds += (first + 1) * t + (0.0 if t32 is None else (n - first + 1) * t32)
    bought: list[int] | None = None
    if settings.time_budget is not None:  # what the budget buys: each scale's share at its evaluation time
        ends = [0.0, *cast(list[float], scale_deadlines(0.0, settings.time_budget, steps, per_eval))]
        shares = [b - a for a, b in itertools.pairwise(ends)]
        bought = [planned_evaluations(share - t, t, n) for share, t, n in zip(shares, per_eval, steps)]
        seconds = min(seconds, settings.time_budget)
    return {
        "scales": [list(s) for s in shapes],
        "evaluations": steps,
        "budget": None if bought is None else {"seconds": settings.time_budget, "evaluations": bought},
        "seconds": round(seconds, 1),
        "peak_bytes": run_bytes(p, shapes, tiles),
        "tiles": [
            None if tile is None else {"side": tile, "count": len(split(hh, ww, tile, layers))}
            for (hh, ww), tile in zip(shapes, tiles)
        ],
        "seconds_per_evaluation": [round(t, 4) for t in per_eval],
        "fp32_finish_seconds_per_evaluation": [None if t is None else round(t, 4) for t in finish],
        "device": settings.device.type,
        "stop_rule": {"rtol": p.stop_rtol, "window": p.stop_window} if p.stops_early else None,
    }
