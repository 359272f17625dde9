"""Video: every frame stylised, each one starting from the previous result warped by the optical flow.

Temporal consistency after Ruder, Dosovitskiy & Brox (2016), "Artistic style
transfer for videos" (manuelruder/artistic-videos):

- frame ``t > 0`` starts from the stylised frame ``t - 1`` warped into frame
  ``t``'s place by the backward flow (:mod:`styletransfer.video.flow`, OpenCV's DIS);
- the objective gains a temporal term, ``temporal_weight / D * sum(c * (x - w)^2)``
  with ``w`` that warped frame, ``c`` the certainty mask (0 at disocclusions
  and motion boundaries, from the forward-backward check) and ``D`` the number
  of values of ``x`` (3 H W, in [0, 1]);
- later frames get ``frame_steps`` evaluations (about a third of ``steps``),
  since they start close to their answer;
- optional long-term consistency (``long_term = J >= 2``): the term also holds
  frame ``t`` to the stylised frames ``t - 2 .. t - J``, each warped by its own
  DIS flow, with the mask ``c_long^{t-j,t} = max(c^{t-j,t} - sum_{k<j} c^{t-k,t}, 0)``
  (:func:`~styletransfer.video.flow.long_term_masks`): each pixel is pulled
  toward the nearest earlier frame where it was visible.  The term becomes
  ``temporal_weight / D * sum_j sum(c_long_j * (x - w_j)^2)``.

``temporal=False`` stylises every frame independently from its own content:
the baseline.

The ``instant`` preset (a feed-forward network, :mod:`styletransfer.video.instant`)
optimises nothing: each frame is one pass of the network at the frame's
size, with the style vector made once per video, and temporal consistency is
a blend with the previous output warped by the backward flow,
``O_t = I_t + b c (W_t - I_t)`` (``I_t`` the fresh pass, ``W_t`` the previous
output warped, ``c`` the certainty mask; with ``long_term`` ``W_t`` and ``c``
come from the nearest earlier frame that saw each pixel).  There
``temporal_weight`` is the blend ``b`` in [0, 1] (default
:data:`~styletransfer.video.instant.DEFAULT_INSTANT_BLEND`), and
``frame_steps`` does not apply.  The stylised frames are kept in a work directory (PNG, one per
frame, written atomically): a killed run continues after the last finished frame.

The work splits in three: :func:`prepare_video` (the driver: reads the clip,
checks the options, finds the finished frames), :func:`stylise_frames` (the
frame loop on plain data, no files: here, or on a Ray actor) and
:class:`VideoPlan`'s ``save_frame`` / ``finish`` (the driver writes).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..errors import OptionError
from ..fileio import file_sha256, save_file_atomically
from ..images import resize, save_image, scaled_shape, to_tensor
from ..job import make_job
from ..losses import Objective
from ..memory import available_bytes
from ..optimize import Interrupted
from ..options import OPTIONS
from ..pipeline import (
    Inputs,
    Settings,
    build_objective,
    evaluate,
    finish_image,
    optimise,
    resolve_device,
    resolve_settings,
    styles_at,
)
from .flow import flow_and_mask, long_term_masks, warp, warping_error
from .instant import DEFAULT_INSTANT_BLEND, InstantStyle, blend_previous
from .io import Clip, is_video_path, read_clip, write_video

#: The temporal term's weight by default (``temporal_weight``); see the module's formula.
DEFAULT_TEMPORAL_WEIGHT = 2e5

#: The most earlier frames the long-term term reaches back to (``long_term``).
MAX_LONG_TERM = 10

#: A flow provider: for each frame pair ``(a, b)`` given, the backward flow of ``b`` (to ``a``) and its certainty mask.
FlowMap = Callable[[Sequence[tuple[np.ndarray, np.ndarray]]], Iterable[tuple[np.ndarray, np.ndarray]]]


def _flow_pair(pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return flow_and_mask(*pair)


def local_flows(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The flows and masks of each pair, here, one after another."""
    return [_flow_pair(p) for p in pairs]


class TemporalObjective(Objective):
    """An objective plus the temporal term: ``weight / x.numel() * sum_j sum(mask_j * (x - target_j)^2)``.

    ``targets``: ``(target_j, mask_j)`` pairs, the previous stylised frame
    warped first (its mask the certainty ``c``), then, for long-term
    consistency, the earlier ones (their masks ``c_long``).  The term is added
    to the ``content`` entry of :meth:`terms` (it is a content-like penalty on
    the pixels), so the optimisers need no change; :attr:`temporal` holds its
    last value.  The base objective is not touched.
    """

    def __init__(self, base: Objective, targets: Sequence[tuple[Tensor, Tensor]], weight: float) -> None:
        self.__dict__.update(base.__dict__)
        self.base = base
        self.targets = list(targets)
        self.temporal_weight = weight
        self.temporal = 0.0

    def terms(self, image: Tensor) -> dict[str, Tensor]:
        t = self.base.terms(image)
        term = temporal_term(image, self.targets, self.temporal_weight)
        self.temporal = float(term.detach())
        return {**t, "content": t["content"] + term}


def temporal_term(image: Tensor, targets: Sequence[tuple[Tensor, Tensor]], weight: float) -> Tensor:
    """``weight / image.numel() * sum_j sum(mask_j * (image - target_j)^2)``."""
    total = sum((mask * (image - target) ** 2).sum() for target, mask in targets)
    return weight * torch.as_tensor(total) / image.numel()


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
class VideoResult:
    """How a video run ended: ``complete``, ``interrupted`` (the finished frames are kept for a rerun) or ``failed``."""

    status: str
    output: Path | None
    frames: int
    done_now: int
    records: list[FrameRecord] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


#: The flows of a video: ``(s, t)`` to the backward flow of frame ``t`` to frame ``s < t`` and its certainty mask.
Flows = dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]


@dataclass
class FrameWork:
    """What the frame loop needs, as plain data (it travels to a Ray actor): no paths, no files.

    Attributes:
        contents: frame ``t`` (``start <= t < count``) at the working size, ``(1, 3, h, w)`` in [0, 1].
        earlier: the stylised frames just before ``start`` (8-bit values), as many as the temporal term reaches.
        flows: the flows of every pair the loop uses (:data:`Flows`).
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


def reach(temporal: bool, long_term: int) -> int:
    """How many earlier stylised frames frame ``t``'s temporal term uses: ``max(1, long_term)``."""
    return max(1, long_term) if temporal else 1


def temporal_targets(
    t: int, stylised: dict[int, Tensor], flows: Flows, span: int, interpolation: Literal["linear", "cubic"] = "linear"
) -> list[tuple[Tensor, Tensor]]:
    """The stylised frames ``t - 1 .. t - span`` warped into frame ``t``, with their masks ``c``, then ``c_long``.

    ``interpolation``: the warp's (:func:`~styletransfer.video.flow.warp`); a
    bicubic warp is clamped to [0, 1].
    """
    earlier = [t - j for j in range(1, span + 1) if t - j >= 0]
    masks = long_term_masks([flows[(s, t)][1] for s in earlier])
    warped = [warp(_to_array(stylised[s]), flows[(s, t)][0], interpolation) for s in earlier]
    if interpolation == "cubic":
        warped = [np.clip(w, 0.0, 1.0) for w in warped]
    return [(_to_tensor(w), torch.from_numpy(mask)[None, None]) for w, mask in zip(warped, masks)]


def starting_image(targets: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
    """Where frame ``t`` starts: the previous stylised frame warped, ``w_1``, except where only an earlier frame saw.

    ``x_0 = w_1 + sum_{j>=2} c_long_j (w_j - w_1)``: with long-term consistency,
    a pixel that frame ``t - 1`` did not see starts from the nearest earlier
    frame that did (the ``c_long`` masks do not overlap), as the temporal term
    pulls it there; with short-term consistency alone, ``x_0 = w_1``.
    """
    first = targets[0][0]
    return first + sum((mask * (target - first) for target, mask in targets[1:]), torch.zeros_like(first))


class _Evaluations:
    """A progress callback that keeps the number of evaluations done (a frame's record says it)."""

    def __init__(self) -> None:
        self.done = 0

    def __call__(self, p: Any) -> None:
        self.done = p.step


def stylise_frames(
    work: FrameWork, should_stop: Callable[[], bool] | None = None
) -> Iterator[tuple[int, Image.Image, FrameRecord]]:
    """Stylise frames ``work.start .. work.count - 1`` in turn; yield each as ``(t, picture, record)``.

    Frame ``t > 0`` starts from the stylised frame ``t - 1`` warped by its flow
    (:func:`starting_image`) and is held near it (and near the earlier ones, for long-term) by the
    temporal term.  Stops early, without raising, when ``should_stop()`` turns
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
            wrap = _temporal_wrapper(targets, work.temporal_weight, settings)
        content = work.contents[t]
        inputs = Inputs(content, list(work.styles), content, None, work.style_pixels, init)
        count = _Evaluations()
        try:  # a time budget is this frame's: it counts from the frame's start
            result = optimise(
                inputs, settings, callback=count, should_stop=should_stop, wrap_objective=wrap, started=started
            )
        except Interrupted:
            return
        final = finish_image(result.image, inputs, settings)
        current = _quantised(to_tensor(final))
        assert result.objective is not None and result.content is not None  # optimised (instant: instant_frames)
        terms = evaluate(result.objective, current, result.content)
        error = None
        if t > 0 and work.measure:
            backward, mask = work.flows[(t - 1, t)]
            error = warping_error(_to_array(current), _to_array(stylised[t - 1]), backward, mask)
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
    (:func:`starting_image` of :func:`temporal_targets`, so with
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
        current = _quantised(to_tensor(final))
        error = None
        if t > 0 and work.measure:
            backward, mask = work.flows[(t - 1, t)]
            error = warping_error(_to_array(current), _to_array(stylised[t - 1]), backward, mask)
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


@dataclass
class VideoPlan:
    """One video as the driver prepared it: its clip, settings, work directory and the frames already done."""

    source: Path
    output: Path
    work: Path
    metrics: Path | None
    clip: Clip
    contents: list[Tensor]
    styles: list[str]
    style_pixels: list[Tensor]
    first: Settings
    later: Settings
    temporal: bool
    temporal_weight: float
    long_term: int
    device: str

    @property
    def name(self) -> str:
        """The source's file or directory name."""
        return self.source.name

    @property
    def frames_dir(self) -> Path:
        """Where the stylised frames are kept."""
        return self.work / "frames"

    @property
    def measures(self) -> bool:
        """Whether each frame's warping error is measured: with the temporal term (its flows are there) or metrics."""
        return self.temporal or self.metrics is not None

    def done(self) -> int:
        """How many frames are finished: the run of stylised frames from the first."""
        k = 0
        while k < len(self.contents) and (self.frames_dir / _frame_name(k)).is_file():
            k += 1
        return k

    def pairs(self) -> list[tuple[int, int]]:
        """The frame pairs ``(s, t)`` whose flows the frames still to do need."""
        if not self.measures:
            return []
        span = reach(self.temporal, self.long_term)
        todo = range(max(1, self.done()), len(self.contents))
        return [(t - j, t) for t in todo for j in range(1, span + 1) if t - j >= 0]

    def arrays(self, pairs: Sequence[tuple[int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The working-size frames of each pair, ``(H, W, 3)`` float32, for a :data:`FlowMap`."""
        return [(_to_array(self.contents[s]), _to_array(self.contents[t])) for s, t in pairs]

    def frame_work(self, flows: Flows) -> FrameWork:
        """The frames still to do, as plain data (the earlier stylised frames read from the work directory)."""
        start = self.done()
        span = reach(self.temporal, self.long_term)
        earlier = {
            s: _quantised(to_tensor(self.frames_dir / _frame_name(s))) for s in range(max(0, start - span), start)
        }
        return FrameWork(
            {t: self.contents[t] for t in range(start, len(self.contents))},
            earlier,
            flows,
            start,
            len(self.contents),
            self.styles,
            self.style_pixels,
            self.first,
            self.later,
            self.temporal,
            self.temporal_weight,
            self.long_term,
            self.measures,
            self.contents[0] if self.first.preset.instant else None,
            self.first.preset.instant and self.metrics is not None,
        )

    def save_frame(self, t: int, picture: Image.Image | bytes, record: FrameRecord) -> None:
        """Keep frame ``t`` (a picture, or its PNG bytes from a node) and its record in the work directory.

        The record goes first: a frame's PNG marks it done, so a done frame always has its record.
        """
        _save_text(self.work / "metrics" / f"frame_{t + 1:05d}.json", json.dumps(record.__dict__))
        path = self.frames_dir / _frame_name(t)
        if isinstance(picture, bytes):
            data = picture
            save_file_atomically(path, lambda f: f.write(data))
        else:
            save_image(picture, path)

    def records(self) -> list[FrameRecord]:
        """The records of the finished frames."""
        return [
            FrameRecord(**json.loads((self.work / "metrics" / f"frame_{t + 1:05d}.json").read_text()))
            for t in range(self.done())
        ]

    def finish(self, done_now: int, seconds: float, error: str | None = None) -> VideoResult:
        """Write the output when every frame is done, and the metrics; the result."""
        n = len(self.contents)
        records = self.records()
        complete = len(records) == n
        frames = [self.frames_dir / _frame_name(t) for t in range(n)]
        written = _write_output(frames, self.output, self.clip) if complete else None
        if self.metrics is not None:
            _write_metrics(self.metrics, records, self.temporal)
        status = "complete" if complete else ("failed" if error else "interrupted")
        return VideoResult(status, written, n, done_now, records, seconds, error)


def prepare_video(
    source: str | os.PathLike[str],
    style: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    temporal: bool = True,
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT,
    frame_steps: int | None = None,
    long_term: int = 0,
    work_dir: str | os.PathLike[str] | None = None,
    metrics: str | os.PathLike[str] | None = None,
    fps: float | None = None,
    **options: Any,
) -> VideoPlan:
    """Check the options, read the clip and prepare its work directory (frames made with other settings go).

    With the ``instant`` preset ``temporal_weight`` is the blend ``b`` of the
    warped previous output (:func:`~styletransfer.video.instant.blend_previous`),
    in [0, 1]; left at :data:`DEFAULT_TEMPORAL_WEIGHT` it is
    :data:`~styletransfer.video.instant.DEFAULT_INSTANT_BLEND`.  ``frame_steps``
    does not apply there.

    Raises:
        OptionError, InputError: before any work.
    """
    if not math.isfinite(temporal_weight) or temporal_weight < 0:
        raise OptionError("temporal_weight", f"{{option}} must be a finite number >= 0, not {temporal_weight}")
    if frame_steps is not None and frame_steps < 1:
        raise OptionError("frame_steps", f"{{option}} must be at least 1, not {frame_steps}")
    if not 0 <= long_term <= MAX_LONG_TERM:
        raise OptionError("long_term", f"{{option}} must be between 0 and {MAX_LONG_TERM}, not {long_term}")
    styles = [style] if isinstance(style, (str, os.PathLike)) else list(style)
    job = make_job(source, [str(s) for s in styles], None, **options)
    o = job.options
    first = resolve_settings(
        job.base_preset(), seed=o["seed"], device=o["device"], weights=o["weights"], time_budget=o["time"],
        **job.run_options(),
    )  # fmt: skip
    instant = first.preset.instant
    if instant:
        temporal_weight = instant_blend(temporal_weight, frame_steps)
    later_steps = frame_steps if frame_steps is not None else max(1, round(first.preset.steps / 3))
    later = first if not temporal or instant else resolve_settings(
        job.base_preset(), seed=o["seed"], device=o["device"], weights=o["weights"], time_budget=o["time"],
        **{**job.run_options(), "steps": later_steps},
    )  # fmt: skip
    out = Path(output)
    _check_output(out, Path(source))
    clip = read_clip(source, fps)
    shape = scaled_shape(clip.height, clip.width, first.preset.size)
    _check_frames_fit(clip, shape)
    contents = [resize(f, shape) for f in clip.frames()]  # one full-size frame at a time
    work = Path(work_dir) if work_dir is not None else default_work_dir(out)
    state = {
        "source": clip.fingerprint(),
        "styles": [file_sha256(s) for s in job.styles],
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in o.items() if _makes_pixels(k)},
        "temporal": temporal,
        "temporal_weight": temporal_weight if temporal else None,
        "frame_steps": later_steps if temporal and not instant else None,
        "shape": list(shape),
    }
    if temporal and long_term > 1:  # (no key at all when off: work directories made before long-term stay valid)
        state["long_term"] = long_term
    _prepare_work_dir(work, state)
    return VideoPlan(
        Path(source),
        out,
        work,
        None if metrics is None else Path(metrics),
        clip,
        contents,
        list(job.styles),
        [to_tensor(s) for s in job.styles],
        first,
        later,
        temporal,
        temporal_weight,
        long_term,
        o["device"],
    )


def instant_blend(temporal_weight: float, frame_steps: int | None) -> float:
    """The ``instant`` preset's blend ``b`` from the video options, or a usage error for one that does not apply.

    ``temporal_weight`` is ``b`` itself, in [0, 1]; :data:`DEFAULT_TEMPORAL_WEIGHT`
    (the option left out) gives :data:`~styletransfer.video.instant.DEFAULT_INSTANT_BLEND`.

    Raises:
        OptionError: on ``frame_steps`` (given at all), or on ``temporal_weight`` above 1.
    """
    if frame_steps is not None:
        raise OptionError(
            "frame_steps",
            "{option} does not apply to the instant preset (a feed-forward network: one pass a frame, no steps); "
            "leave it out, or choose the fast, quality or tutorial preset",
        )
    if temporal_weight == DEFAULT_TEMPORAL_WEIGHT:
        return DEFAULT_INSTANT_BLEND
    if not 0 <= temporal_weight <= 1:
        raise OptionError(
            "temporal_weight",
            f"{{option}} with the instant preset is the blend of the previous frame warped, between 0 and 1, "
            f"not {temporal_weight} (default {DEFAULT_INSTANT_BLEND}); it is no loss weight there",
        )
    return temporal_weight


def plan_flows(plan: VideoPlan, flows: FlowMap | None = None) -> Flows:
    """The flows of the pairs ``plan`` still needs, from ``flows`` (default: here, in turn)."""
    pairs = plan.pairs()
    return dict(zip(pairs, (flows or local_flows)(plan.arrays(pairs)))) if pairs else {}


def run_here(
    plan: VideoPlan,
    flows: FlowMap | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_frame: Callable[[FrameRecord, int], None] | None = None,
) -> VideoResult:
    """Stylise the frames ``plan`` still needs in this process, keeping each one as it is done."""
    started = time.perf_counter()
    work = plan.frame_work(plan_flows(plan, flows))
    done_now = 0
    for t, picture, record in stylise_frames(work, should_stop):
        plan.save_frame(t, picture, record)
        done_now += 1
        if on_frame is not None:
            on_frame(record, work.count)
    return plan.finish(done_now, time.perf_counter() - started)


def stylize_video(
    source: str | os.PathLike[str],
    style: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    temporal: bool = True,
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT,
    frame_steps: int | None = None,
    long_term: int = 0,
    work_dir: str | os.PathLike[str] | None = None,
    metrics: str | os.PathLike[str] | None = None,
    fps: float | None = None,
    flows: FlowMap | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_frame: Callable[[FrameRecord, int], None] | None = None,
    **options: Any,
) -> VideoResult:
    """Stylise every frame of ``source`` (a video file or a directory of frames) into ``output``.

    ``output`` is a video file (``.mp4``...: H.264, the source's audio copied)
    or a directory of PNG frames.  ``options`` are the run options of the
    option table (``size``, ``steps``, ``preset``...); ``steps`` is the first
    frame's budget, ``frame_steps`` (default ``steps / 3``) the later frames'.
    ``long_term = J >= 2`` adds the long-term term over frames ``t - 2 .. t - J``.
    A time budget (``time``) is per frame: each frame's optimisation ends
    ``time`` seconds after that frame's start, with its best image so far.
    ``flows`` computes flows and masks for many frame pairs (default: here,
    in turn).  ``on_frame(record, total)`` hears each finished frame.

    Raises:
        OptionError, InputError: before any work.
    """
    plan = prepare_video(
        source,
        style,
        output,
        temporal=temporal,
        temporal_weight=temporal_weight,
        frame_steps=frame_steps,
        long_term=long_term,
        work_dir=work_dir,
        metrics=metrics,
        fps=fps,
        **options,
    )
    return run_here(plan, flows, should_stop, on_frame)


def plan_videos(
    sources: Sequence[str | os.PathLike[str]],
    style: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    work_dir: str | os.PathLike[str] | None = None,
    metrics: str | os.PathLike[str] | None = None,
    **options: Any,
) -> list[VideoPlan]:
    """One :class:`VideoPlan` per source.

    One source: ``output``, ``work_dir`` and ``metrics`` are its own, as for
    :func:`stylize_video`.  Several: ``output`` is a directory holding, for
    each source, ``NAME.mp4`` (a video file's name, its suffix kept) or
    ``NAME/`` (a directory of frames); the work directories are
    ``OUT/NAME.work`` (or ``work_dir/NAME``), the metrics ``metrics/NAME.json``.

    Raises:
        OptionError: two sources with the same name, an output that is a file.
    """
    if len(sources) == 1:
        return [prepare_video(sources[0], style, output, work_dir=work_dir, metrics=metrics, **options)]
    names = [Path(s).name for s in sources]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise OptionError("inputs", f"two inputs are called {twice[0]}; each video's output is named after its input")
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise OptionError("output", f"{out}: is a file; with several inputs the output is a directory")
    out.mkdir(parents=True, exist_ok=True)
    if metrics is not None:
        Path(metrics).mkdir(parents=True, exist_ok=True)
    plans = []
    for source, name in zip(sources, names):
        target = out / name if is_video_path(name) or Path(source).is_dir() else out / f"{Path(name).stem}.mp4"
        plans.append(
            prepare_video(
                source,
                style,
                target,
                work_dir=None if work_dir is None else Path(work_dir) / name,
                metrics=None if metrics is None else Path(metrics) / f"{Path(name).stem}.json",
                **options,
            )
        )
    return plans


def default_work_dir(output: str | os.PathLike[str]) -> Path:
    """``OUT.work`` beside the output."""
    out = Path(output)
    return out.with_name(out.name + ".work")


def _frame_name(t: int) -> str:
    return f"frame_{t + 1:05d}.png"


def _to_array(image: Tensor) -> np.ndarray:
    """A ``(1, 3, H, W)`` tensor as an ``(H, W, 3)`` float32 array."""
    return np.ascontiguousarray(image[0].permute(1, 2, 0).detach().cpu().numpy(), dtype=np.float32)


def _to_tensor(array: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None].float()


def _quantised(image: Tensor) -> Tensor:
    """The image as its 8-bit PNG holds it (a resumed run starts from exactly what an unbroken one had)."""
    return torch.round(image.clamp(0.0, 1.0) * 255.0) / 255.0


def png_bytes(picture: Image.Image) -> bytes:
    """``picture`` encoded as PNG, as :func:`~styletransfer.images.save_image` writes it."""
    buffer = BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _temporal_wrapper(
    targets: Sequence[tuple[Tensor, Tensor]], weight: float, settings: Settings
) -> Callable[[Objective, Tensor], Objective]:
    def wrap(objective: Objective, content: Tensor) -> Objective:
        shape = (content.shape[-2], content.shape[-1])
        fitted = []
        for target, mask in targets:
            t = target if tuple(target.shape[-2:]) == shape else resize(target, shape)
            m = (
                mask
                if tuple(mask.shape[-2:]) == shape
                else (resize(mask.expand(1, 3, -1, -1), shape)[:, :1] > 0.5).float()
            )
            fitted.append((t.to(settings.device), m.to(settings.device)))
        return TemporalObjective(objective, fitted, weight)

    return wrap


def _check_frames_fit(clip: Clip, shape: tuple[int, int]) -> None:
    """Refuse a clip whose frames at the working size would not fit in the memory available.

    The working-size frames (float32 RGB) are kept for the flows and the frame
    loop, so they count ``count * 12 * h * w`` bytes; they may take half of
    what is available, the other half being the optimisation's.

    Raises:
        OptionError: on ``size``.
    """
    need = clip.count * 12 * shape[0] * shape[1]
    available = available_bytes(torch.device("cpu"))
    if available is not None and need > available // 2:
        raise OptionError(
            "size",
            f"{clip.source}: its {clip.count} frames at {shape[1]}x{shape[0]} need {need / 2**30:.1f} GiB of memory, "
            f"more than half of the {available / 2**30:.1f} GiB available; use a smaller {{option}} or cut the clip",
        )


def _save_text(path: Path, text: str) -> None:
    save_file_atomically(path, lambda f: f.write(text.encode()))


def _makes_pixels(name: str) -> bool:
    return any(o.name == name and (o.group == "run" or name == "weights") for o in OPTIONS)


def _check_output(out: Path, source: Path) -> None:
    """Refuse an output that would overwrite the source or lies in a missing directory."""
    if out.exists() and source.exists() and os.path.samefile(out, source):
        raise OptionError("output", f"{out}: the output would overwrite the input; choose another path")
    if is_video_path(out):
        if out.is_dir():
            raise OptionError("output", f"{out}: is a directory; give a video file name such as {out / 'out.mp4'}")
        parent = out.parent if str(out.parent) else Path(".")
        if not parent.is_dir():
            raise OptionError(
                "output", f"{out}: the directory {parent} does not exist; create it or choose another path"
            )
    elif out.exists() and not out.is_dir():
        raise OptionError("output", f"{out}: is a file; give a directory for PNG frames, or a .mp4 name")


def _prepare_work_dir(work: Path, state: dict[str, Any]) -> None:
    """Create the work directory; frames made with other settings (or another source) are cleared."""
    key = hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()
    marker = work / "settings.json"
    if marker.is_file():
        try:
            same = json.loads(marker.read_text()).get("key") == key
        except json.JSONDecodeError:
            same = False
        if not same:
            shutil.rmtree(work / "frames", ignore_errors=True)
            shutil.rmtree(work / "metrics", ignore_errors=True)
    (work / "frames").mkdir(parents=True, exist_ok=True)
    (work / "metrics").mkdir(exist_ok=True)
    text = json.dumps({"key": key, **state}, indent=1, default=str)
    save_file_atomically(marker, lambda f: f.write(text.encode()))


def _write_output(frames: Sequence[Path], out: Path, clip: Clip) -> Path:
    if is_video_path(out):
        return write_video(frames, out, clip.fps, clip.source if clip.is_video else None)
    out.mkdir(parents=True, exist_ok=True)
    for f in frames:
        data = f.read_bytes()
        save_file_atomically(out / f.name, lambda fh, data=data: fh.write(data))  # type: ignore[misc]
    return out


def _write_metrics(path: Path, records: Sequence[FrameRecord], temporal: bool) -> None:
    errors = [r.warping_error for r in records if r.warping_error is not None]
    styles = [r.style for r in records if r.style is not None]
    data = {
        "temporal": temporal,
        "frames": [r.__dict__ for r in records],
        "mean_warping_error": float(np.mean(errors)) if errors else None,
        "mean_style_loss": float(np.mean(styles)) if styles else None,
        "seconds": round(sum(r.seconds for r in records), 3),
    }
    text = json.dumps(data, indent=1)
    save_file_atomically(path, lambda f: f.write(text.encode()))


__all__ = [
    "DEFAULT_INSTANT_BLEND",
    "DEFAULT_TEMPORAL_WEIGHT",
    "MAX_LONG_TERM",
    "FrameRecord",
    "FrameWork",
    "TemporalObjective",
    "VideoPlan",
    "VideoResult",
    "default_work_dir",
    "instant_blend",
    "instant_frames",
    "local_flows",
    "plan_flows",
    "plan_videos",
    "prepare_video",
    "run_here",
    "stylise_frames",
    "stylize_video",
]
