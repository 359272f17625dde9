"""Running a preset: :func:`optimize` (one image, coarse to fine), :func:`optimize_batch` (several in one batch),
the instant preset's one pass (:func:`instant_image`), and the finished picture (:func:`finish_image`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import cast

from PIL import Image
from torch import Tensor

from ..color import match_color, preserve_luminance
from ..driver import ScaleTask, Stage, run_scale, scale_deadlines
from ..errors import OptionError
from ..images import ImageLike, resize, with_alpha
from ..instant import mixed_vector, transform
from ..losses import Objective, blend_weights
from ..memory import batch_capacity, lbfgs_history
from ..optimize import (
    Callback,
    Interrupted,
    LbfgsConfig,
    LowPassBoost,
    Outcome,
    Reporter,
    StopCheck,
)
from ..presets import Preset
from ..vgg import get_vgg
from .cost import evaluation_costs
from .inputs import Inputs, check_inputs, decode_inputs, shape_at
from .mixing import mix_scales
from .objective import content_at, initial_image, objective_at, styles_at
from .settings import Settings, configure_device, stage_sizes, stage_steps, total_steps
from .tiles import run_tiles


def optimize(
    inputs: Inputs,
    settings: Settings,
    *,
    callback: Callback | None = None,
    should_stop: StopCheck | None = None,
    on_scale: Callable[[int, Tensor], None] | None = None,
    wrap_objective: Callable[[Objective, Tensor], Objective] | None = None,
    started: float | None = None,
) -> Outcome:
    """Optimise the image at each scale of :func:`stage_sizes`, coarse to fine.

    Each scale resizes the decoded content and styles to its size, computes its
    targets once, and starts from the previous scale's result upsampled
    bilinearly; :func:`~styletransfer.driver.run_scale` runs it (bf16 and its
    fp32 finish, the stopping rule, the time budget).  ``on_scale(size, image)``
    is called as each scale ends.  ``wrap_objective(objective, content)``, when
    given, returns the objective each scale optimises instead (a front end's
    extra term, e.g. video's temporal loss); the result's ``objective`` is
    still the unwrapped one.

    With ``settings.time_budget`` the run ends ``time_budget`` seconds after
    ``started`` (a ``time.perf_counter()`` value; default: now) with the best
    image so far, the budget split over the scales by
    :func:`~styletransfer.driver.scale_deadlines`; a scale whose time is up
    before it starts keeps the upsampled image.

    bf16's rounding (relative 2^-8 in every activation) puts a floor under the
    loss the optimiser can see, where fp32 goes on down (docs/benchmarks.md,
    "Results, all eight pairs"), hence the fp32 finish.

    Returns:
        The run's :class:`~styletransfer.optimize.Outcome`: ``complete`` with the
        optimised ``(1, 3, H, W)`` image on the CPU (before :func:`finish_image`)
        and the last scale's objective and content, to report the result's loss
        terms without new targets (``None`` for the instant preset, which has no
        objective); ``interrupted`` on Ctrl-C or when ``should_stop()`` returns
        True (checked before every evaluation), with the best image so far;
        ``diverged`` when the loss stays NaN or infinite, with the last finite image.
    """
    p = settings.preset
    begin = time.perf_counter() if started is None else started
    try:
        inputs = run_inputs(inputs, settings, should_stop=should_stop)
    except Interrupted as stop:
        return Outcome("interrupted", stop.image, stop.step)
    if p.instant:
        return Outcome("complete", instant_image(inputs, settings), 1)
    report = Reporter(total_steps(p), callback, should_stop=should_stop)
    shapes = [shape_at(inputs.content_pixels, size) for size in stage_sizes(p)]
    deadlines = budget_deadlines(settings, begin, inputs)
    x: Tensor | None = None
    last: Outcome | None = None
    for scale, (size, steps, deadline) in enumerate(zip(stage_sizes(p), stage_steps(p), deadlines)):

        def build(precision: str, size: int = size) -> Stage:
            objective, c, _ = objective_at(inputs, replace(settings, precision=precision), size)
            return Stage(objective, objective if wrap_objective is None else wrap_objective(objective, c), c)

        if x is not None and deadline is not None and time.perf_counter() >= deadline:
            x = resize(x, shapes[scale]).clamp(0.0, 1.0)  # out of time: the upsampled image
            continue
        x0 = _start_image(inputs, settings, x, shapes[scale], size)
        (last,) = run_scale(
            [ScaleTask(build, x0, report)], p, settings.precision, steps, lbfgs_config(p, x0, scale), deadline=deadline
        )
        if last.status != "complete":
            return last
        x = last.image
        if on_scale is not None:
            on_scale(size, x.detach().cpu())
    assert x is not None
    if last is None or last.content is None or last.content.shape[-2:] != x.shape[-2:]:  # the last scale was skipped
        objective, c, _ = objective_at(inputs, settings, p.size)
        return Outcome("complete", x.cpu(), report.step, objective, c)
    return replace(last, image=x.cpu())


def run_inputs(inputs: Inputs, settings: Settings, *, should_stop: StopCheck | None = None) -> Inputs:
    """The inputs a run optimises towards, made before its first evaluation; ``inputs`` itself is never changed.

    The checks that need the decoded inputs (:func:`check_inputs`), the
    device's switches (:func:`configure_device`), and with a ``fine_style``
    new style images mixed from it (:func:`mix_scales`, a new :class:`Inputs`).
    :func:`optimize` calls it; a caller that needs the inputs the run used
    (the runner scores a stopped run against them) calls it first.

    Raises:
        Interrupted: at step 0, when ``should_stop()`` turns True during the mixing.
    """
    check_inputs(inputs, settings)
    configure_device(settings)
    return mix_scales(inputs, settings, should_stop=should_stop)


def instant_image(inputs: Inputs, settings: Settings) -> Tensor:
    """The instant preset's picture: one pass of the feed-forward network at the output's size, returned on the CPU.

    The content is resized to ``size`` (the seed's resize); ``histogram``
    colours recolour each style to the content before its style vector is
    taken; ``style_blend`` and ``strength`` mix the vectors
    (:func:`~styletransfer.instant.model.mixed_vector`).
    """
    p = settings.preset
    content = resize(inputs.content_pixels, shape_at(inputs.content_pixels, p.size))
    styles = inputs.style_pixels
    if p.preserve_colors == "histogram":
        styles = [match_color(s, content).clamp(0.0, 1.0) for s in styles]
    weights = blend_weights(p.style_blend, len(styles))
    vector = mixed_vector(content, styles, weights, p.strength, settings.device)
    return transform(content, vector, settings.device, settings.precision).cpu()


def budget_deadlines(settings: Settings, begin: float, inputs: Inputs) -> list[float | None]:
    """Each scale's deadline under ``settings.time_budget`` seconds counted from ``begin``; ``None`` each without one.

    The network is loaded first (once per process), and what is left of the
    budget then is split over the scales by their cost
    (:func:`~styletransfer.driver.scale_deadlines`, with the dry run's cost
    model, :func:`~styletransfer.pipeline.cost.evaluation_costs`, and the
    tiles each scale gets, :func:`~styletransfer.pipeline.tiles.run_tiles`):
    loading the weights, a second or two, does not eat the first scale's share.
    """
    p = settings.preset
    if settings.time_budget is None:
        return [None] * len(stage_sizes(p))
    shapes = [shape_at(inputs.content_pixels, size) for size in stage_sizes(p)]
    layers = [*p.style_layers, *p.content_layers]
    costs = evaluation_costs(shapes, run_tiles(inputs, settings), layers, settings.precision, settings.device)
    get_vgg(settings.weights, settings.device)
    now = time.perf_counter()
    left = max(0.0, begin + settings.time_budget - now)
    return scale_deadlines(now, left, stage_steps(p), costs)


def _start_image(inputs: Inputs, settings: Settings, x: Tensor | None, shape: tuple[int, int], size: int) -> Tensor:
    """A scale's first image: the preset's ``init`` at the first scale, else the previous result upsampled."""
    if x is None:
        c = content_at(inputs, size, settings)
        s = styles_at(inputs, size, settings.preset, inputs.content_pixels)
        return initial_image(settings, c, s[0], inputs.init).to(settings.device)
    return resize(x, shape).clamp(0.0, 1.0).to(settings.device)


def lbfgs_config(preset: Preset, start: Tensor, scale: int) -> LbfgsConfig:
    """The preset's L-BFGS at a scale that starts from ``start``: the history that fits its size,
    and the :func:`lowpass` preconditioner at the first scale (``scale == 0``)."""
    return LbfgsConfig.from_preset(
        preset,
        history=lbfgs_history(preset, start.numel()),
        precondition=lowpass(preset, start) if scale == 0 else None,
    )


def lowpass(preset: Preset, image: Tensor) -> LowPassBoost | None:
    """The preset's L-BFGS preconditioner for ``image``'s size (sigmas scale with its long side), or ``None``.

    Used at the first scale only: a coarse-to-fine run's later scales start
    from the upsampled result, whose broad colours are settled, and add fine
    detail, where the boost is 1 (and its FFTs would cost memory at 2048 px).
    """
    if preset.lowpass_gain <= 0 or not preset.lowpass_sigmas:
        return None
    side = max(image.shape[-2], image.shape[-1])
    return LowPassBoost(preset.lowpass_gain, [f * side for f in preset.lowpass_sigmas])


def can_batch(inputs: Inputs, settings: Settings) -> bool:
    """Whether a run can share a batch (:func:`optimize_batch`) with others of the same settings and shape.

    It can when it uses L-BFGS and its objective differs from theirs in the
    content alone: no regions (``masks``, ``style_masks``), no ``fine_style``,
    no colour mode that changes the style images per content
    (``histogram``, ``luminance-only``), and no scale in tiles (:func:`run_tiles`).
    """
    p = settings.preset
    return (
        p.optimizer == "lbfgs"
        and inputs.masks is None
        and inputs.style_masks is None
        and inputs.fine_style is None
        and p.preserve_colors not in ("histogram", "luminance-only")
        and not any(run_tiles(inputs, settings))
    )


def batch_key(inputs: Inputs, settings: Settings) -> str | None:
    """Runs with equal keys can share a batch: a hash of the settings, the style pixels and each scale's shape.

    ``None`` for a run that cannot (:func:`can_batch`).
    """
    if not can_batch(inputs, settings):
        return None
    shapes = [shape_at(inputs.content_pixels, size) for size in stage_sizes(settings.preset)]
    digest = hashlib.sha256(repr((settings, shapes)).encode())
    for t in inputs.style_pixels:
        digest.update(repr(tuple(t.shape)).encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def batch_limit(inputs: Inputs, settings: Settings) -> int:
    """The most runs like this one that fit in memory as one batch (:func:`~styletransfer.memory.batch_capacity`)."""
    h, w = shape_at(inputs.content_pixels, settings.preset.size)
    return batch_capacity(settings.preset, h, w, settings.device)


def optimize_batch(
    inputs: Sequence[Inputs],
    settings: Settings,
    *,
    callbacks: Sequence[Callback | None] | None = None,
    should_stop: StopCheck | None = None,
    on_scale: Sequence[Callable[[int, Tensor], None] | None] | None = None,
    started: float | None = None,
) -> list[Outcome]:
    """:func:`optimize` for several contents at once: one batched forward and backward per evaluation.

    The runs must share a :func:`batch_key` (the settings, the styles, each
    scale's shape).  At each scale of :func:`stage_sizes`, every run still
    going builds its objective as :func:`optimize` does, and
    :func:`~styletransfer.optimize.run_lbfgs_batch` optimises them together,
    each image with its own L-BFGS state, line search, cap and stopping rule
    (and under bf16, as in :func:`optimize`, its fp32 finish).
    Image ``b``'s result is what :func:`optimize` gives it alone, up to the
    rounding of batched convolutions.  ``callbacks[b]`` and ``on_scale[b]``
    hear run ``b`` only.  A time budget (``settings.time_budget`` from
    ``started``) is every run's own, as in :func:`optimize`: the runs start
    together, so they share each scale's deadline and all end by
    ``started + time_budget``.

    Returns:
        Per run, its :class:`~styletransfer.optimize.Outcome`, as :func:`optimize`
        gives it: a stop asked for interrupts every run still going; a diverged
        run leaves the batch and the others go on.

    Raises:
        OptionError: for runs that cannot share a batch (different keys, or :func:`can_batch` false).
    """
    p = settings.preset
    keys = {batch_key(i, settings) for i in inputs}
    if None in keys or len(keys) > 1:
        raise OptionError(
            "size",
            "a batch needs L-BFGS runs of one shape with the same styles and no regions, fine_style, "
            "histogram or luminance-only colours",
        )
    for i in inputs:
        check_inputs(i, settings)
    configure_device(settings)
    begin = time.perf_counter() if started is None else started
    n = len(inputs)
    callbacks = [None] * n if callbacks is None else list(callbacks)
    hooks = [None] * n if on_scale is None else list(on_scale)
    reports = [Reporter(total_steps(p), cb, should_stop=should_stop) for cb in callbacks]
    results: list[Outcome | None] = [None] * n
    xs: list[Tensor | None] = [None] * n
    shapes = [shape_at(inputs[0].content_pixels, size) for size in stage_sizes(p)]
    deadlines = budget_deadlines(settings, begin, inputs[0])
    for scale, (size, steps, deadline) in enumerate(zip(stage_sizes(p), stage_steps(p), deadlines)):
        going = [b for b in range(n) if (r := results[b]) is None or r.status == "complete"]
        if not going:
            break
        if scale > 0 and deadline is not None and time.perf_counter() >= deadline:
            for b in going:  # out of time: the upsampled image, scored at the final size
                xs[b] = resize(cast(Tensor, xs[b]), shapes[scale]).clamp(0.0, 1.0)
                objective, c, _ = objective_at(inputs[b], settings, p.size)
                results[b] = Outcome("complete", cast(Tensor, xs[b]).cpu(), reports[b].step, objective, c)
            continue

        def build(precision: str, b: int, size: int = size) -> Stage:
            objective, c, _ = objective_at(inputs[b], replace(settings, precision=precision), size)
            return Stage(objective, objective, c)

        tasks = [
            ScaleTask(partial(build, b=b), _start_image(inputs[b], settings, xs[b], shapes[scale], size), reports[b])
            for b in going
        ]
        outcomes = run_scale(
            tasks, p, settings.precision, steps, lbfgs_config(p, tasks[0].start, scale), deadline=deadline
        )
        for b, out in zip(going, outcomes):
            if out.status != "complete":
                results[b] = out
                continue
            xs[b] = out.image
            results[b] = replace(out, image=out.image.cpu())
            hook = hooks[b]
            if hook is not None:
                hook(size, out.image.detach().cpu())
    return [cast(Outcome, r) for r in results]


def stylize_batch(
    contents: Sequence[ImageLike],
    style: ImageLike | Sequence[ImageLike],
    settings: Settings,
    *,
    should_stop: StopCheck | None = None,
) -> list[Tensor]:
    """Decode the inputs and :func:`optimize_batch`: one ``(1, 3, H, W)`` CPU image per content, in order.

    :func:`stylize_tensor` for several contents of one shape at the run's
    sizes (see :func:`batch_key`), in one batch.  For each run's own outcome
    (a stop or a divergence does not end the others) use :func:`optimize_batch`.

    Raises:
        Interrupted, Diverged: the first content's, in order, whose run ended so.
    """
    inputs = [decode_inputs(c, style, settings.preset.init, preset=settings.preset) for c in contents]
    outcomes = optimize_batch(inputs, settings, should_stop=should_stop)
    for out in outcomes:
        if (error := out.error()) is not None:
            raise error
    return [out.image for out in outcomes]


def stylize_tensor(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    settings: Settings,
    *,
    init: str | ImageLike | None = None,
    callback: Callback | None = None,
    should_stop: StopCheck | None = None,
    on_scale: Callable[[int, Tensor], None] | None = None,
) -> Tensor:
    """Decode the inputs and :func:`optimize`; the ``(1, 3, H, W)`` CPU image, before :func:`finish_image`.

    Raises:
        Interrupted, Diverged: when the run ended so (:meth:`~styletransfer.optimize.Outcome.error`).
    """
    inputs = decode_inputs(content, style, settings.preset.init if init is None else init, preset=settings.preset)
    outcome = optimize(inputs, settings, callback=callback, should_stop=should_stop, on_scale=on_scale)
    if (error := outcome.error()) is not None:
        raise error
    return outcome.image


def finish_image(image: Tensor, inputs: Inputs, settings: Settings) -> Image.Image:
    """The output picture: ``luminance`` colour mode applied, the content's alpha re-attached."""
    if settings.preset.preserve_colors in ("luminance", "luminance-only"):
        image = preserve_luminance(image, inputs.content_pixels)
    return with_alpha(image, inputs.alpha)
