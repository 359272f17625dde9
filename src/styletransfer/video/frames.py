"""The frame loop, on plain data: each frame stylised in turn, warm-started and held by the temporal term.

:class:`FrameWork` is what the loop needs (no paths, no files: it travels to a
Ray actor); :func:`stylize_frames` yields each finished frame with its
:class:`FrameRecord`.  An optimised frame ``t > 0`` starts from the stylised
frames before it warped into its place
(:func:`~styletransfer.video.temporal.starting_image`) and is held near them by
:class:`~styletransfer.video.temporal.TemporalObjective`; the ``instant``
preset's frames are one pass of the network each, blended with the previous
output warped (:func:`instant_frames`, :mod:`styletransfer.video.instant`).
Every finished frame is kept as its 8-bit PNG holds it (:func:`quantised`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from ..images import to_tensor
from ..pipeline import (
    Inputs,
    Settings,
    build_objective,
    evaluate,
    finish_image,
    optimize,
    resolve_device,
    styles_at,
)
from .flow import Flows, warping_error
from .instant import InstantStyle, blend_previous
from .temporal import reach, starting_image, temporal_targets, temporal_term, temporal_wrapper, to_array


@dataclass
class FrameRecord:
    """One frame's metrics: its warping error against the previous stylised frame, evaluations, seconds, losses.

    An optimised frame has every field.  An ``instant`` frame has 1
    evaluation (one pass of the network); ``seconds`` is its pass, warp and
    blend; its loss terms (the seed's objective with the preset's weights) are
    measured only when metrics are written, else ``None``; ``temporal`` is
    ``None`` (it has no temporal term).
    """

    frame: int
    warping_error: float | None
    evaluations: int
    seconds: float
    style: float | None
    content: float | None
    tv: float | None
    temporal: float | None


@dataclass
class FrameWork:
    """What the frame loop needs, as plain data (it travels to a Ray actor): no paths, no files.

    Attributes:
        contents: frame ``t`` (``start <= t < count``) at the working size, ``(1, 3, h, w)`` in [0, 1].
        earlier: the stylised frames just before ``start`` (8-bit values), as many as the temporal term reaches.
        flows: the flows of every pair the loop uses (:data:`~styletransfer.video.flow.Flows`).
        first, later: the settings of frame 0 and of the later frames.
        temporal_weight: the temporal term's weight; for the ``instant`` preset the blend ``b`` in [0, 1].
        measure: compute each frame's warping error against the previous one (needs the ``(t - 1, t)`` flows).
        reference: the ``instant`` preset's frame 0 at the working size (its style vector's content); else ``None``.
        losses: measure each ``instant`` frame's loss terms (for the metrics); optimised frames always have them.
    """

    contents: dict[int, Tensor]
    earlier: dict[int, Tensor]
    flows: Flows
    start: int
    count: int
    styles: list[str]
    style_pixels: list[Tensor]
    first: Settings
    later: Settings
    temporal: bool
    temporal_weight: float
    long_term: int
    measure: bool
    reference: Tensor | None = None
    losses: bool = False

    def on_node(self, weights: str, device: str) -> FrameWork:
        """The same work with a node's own weights file and device (``auto`` resolved there)."""
        where = resolve_device(device)
        return replace(
            self,
            first=replace(self.first, weights=weights, device=where),
            later=replace(self.later, weights=weights, device=where),
        )


class _Evaluations:
    """A progress callback that keeps the number of evaluations done (a frame's record says it)."""

    def __init__(self) -> None:
        self.done = 0

    def __call__(self, p: Any) -> None:
        self.done = p.step


def stylize_frames(
    work: FrameWork, should_stop: Callable[[], bool] | None = None
) -> Iterator[tuple[int, Image.Image, FrameRecord]]:
    """Stylise frames ``work.start .. work.count - 1`` in turn; yield each as ``(t, picture, record)``.

    Frame ``t > 0`` starts from the stylised frame ``t - 1`` warped by its flow
    (:func:`~styletransfer.video.temporal.starting_image`) and is held near it
    (and near the earlier ones, for long-term) by the temporal term.  Stops early, without raising, when ``should_stop()`` turns
    True (checked before every evaluation and after each frame).  The
    ``instant`` preset's frames are one pass each (:func:`instant_frames`).
    """
    if work.first.preset.instant:
        yield from instant_frames(work, should_stop)
        return
    stylised = dict(work.earlier)
    span = reach(work.temporal, work.long_term)
    for t in range(work.start, work.count):
        started = time.perf_counter()
        settings = work.first if t == 0 or not work.temporal else work.later
        init: str | Tensor = settings.preset.init
        wrap = None
        targets: list[tuple[Tensor, Tensor]] = []
        if t > 0 and work.temporal:
            targets = temporal_targets(t, stylised, work.flows, span)
            init = starting_image(targets)
            wrap = temporal_wrapper(targets, work.temporal_weight, settings)
        content = work.contents[t]
        inputs = Inputs(content, list(work.styles), content, None, work.style_pixels, init)
        count = _Evaluations()
        # a time budget is this frame's: it counts from the frame's start
        result = optimize(
            inputs, settings, callback=count, should_stop=should_stop, wrap_objective=wrap, started=started
        )
        if result.status == "interrupted":
            return
        if (diverged := result.error()) is not None:
            raise diverged
        final = finish_image(result.image, inputs, settings)
        current = quantised(to_tensor(final))
        assert result.objective is not None and result.content is not None  # optimised (instant: instant_frames)
        terms = evaluate(result.objective, current, result.content)
        error = None
        if t > 0 and work.measure:
            backward, mask = work.flows[(t - 1, t)]
            error = warping_error(to_array(current), to_array(stylised[t - 1]), backward, mask)
        record = FrameRecord(
            t + 1,
            error,
            count.done,
            round(time.perf_counter() - started, 3),
            terms["style"],
            terms["content"],
            terms["tv"],
            float(temporal_term(current, targets, work.temporal_weight)) if targets else 0.0,
        )
        stylised[t] = current
        for old in [s for s in stylised if s <= t - span]:
            del stylised[old]
        yield t, final, record
        if should_stop is not None and should_stop() and t + 1 < work.count:
            return


def instant_frames(
    work: FrameWork, should_stop: Callable[[], bool] | None = None
) -> Iterator[tuple[int, Image.Image, FrameRecord]]:
    """The ``instant`` preset's frames ``work.start .. work.count - 1``, in turn, as ``(t, picture, record)``.

    Frame ``t`` is ``O_t = I_t + b c (W_t - I_t)``
    (:func:`~styletransfer.video.instant.blend_previous`): ``I_t`` the
    network's pass on frame ``t`` with the video's style
    (:class:`~styletransfer.video.instant.InstantStyle`, made once here),
    ``W_t`` the previous output warped into frame ``t``
    (:func:`~styletransfer.video.temporal.starting_image` of
    :func:`~styletransfer.video.temporal.temporal_targets`, so with
    ``long_term`` each pixel from the nearest earlier frame that saw it),
    ``c`` the sum of the (disjoint) masks and ``b = work.temporal_weight``;
    ``O_t = I_t`` for frame 0 and without ``temporal``.  The colour modes
    (:func:`~styletransfer.pipeline.finish_image`) apply to ``O_t``.  Every
    output is kept as its 8-bit PNG holds it, so a resumed run blends exactly
    what an unbroken one did.  ``should_stop()`` is checked before each frame.
    """
    if work.reference is None:
        raise ValueError("the instant preset's frame work needs its reference frame (frame 0)")
    settings = work.first
    style = InstantStyle.of(work.reference, work.style_pixels, settings)
    objective_styles: list[Tensor] | None = None
    stylised = dict(work.earlier)
    span = reach(work.temporal, work.long_term)
    for t in range(work.start, work.count):
        if should_stop is not None and should_stop():
            return
        started = time.perf_counter()
        content = work.contents[t]
        image = style.picture(content)
        if t > 0 and work.temporal and work.temporal_weight > 0:
            targets = temporal_targets(t, stylised, work.flows, span, "cubic")
            certain = sum((mask for _, mask in targets[1:]), targets[0][1])
            image = blend_previous(image, starting_image(targets), certain, work.temporal_weight)
        inputs = Inputs(content, list(work.styles), content, None, work.style_pixels, "content")
        final = finish_image(image, inputs, settings)
        current = quantised(to_tensor(final))
        error = None
        if t > 0 and work.measure:
            backward, mask = work.flows[(t - 1, t)]
            error = warping_error(to_array(current), to_array(stylised[t - 1]), backward, mask)
        seconds = round(time.perf_counter() - started, 3)
        terms: dict[str, float | None] = {"style": None, "content": None, "tv": None}
        if work.losses:  # the seed's terms, for the metrics alone (a VGG pass: costlier than the frame itself)
            if objective_styles is None:
                objective_styles = styles_at(inputs, settings.preset.size, settings.preset, work.reference)
            objective = build_objective(settings, content, objective_styles)
            terms = dict(evaluate(objective, current, content.to(settings.device)))
        record = FrameRecord(t + 1, error, 1, seconds, terms["style"], terms["content"], terms["tv"], None)
        stylised[t] = current
        for old in [s for s in stylised if s <= t - span]:
            del stylised[old]
        yield t, final, record


def quantised(image: Tensor) -> Tensor:
    """The image as its 8-bit PNG holds it (a resumed run starts from exactly what an unbroken one had)."""
    return torch.round(image.clamp(0.0, 1.0) * 255.0) / 255.0
