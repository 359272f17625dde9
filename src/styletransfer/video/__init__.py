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
  since they start close to their answer.

``temporal=False`` stylises every frame independently from its own content:
the baseline.  The stylised frames are kept in a work directory (PNG, one per
frame, written atomically): a killed run continues after the last finished frame.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import OptionError
from ..fileio import file_sha256, save_file_atomically
from ..images import resize, save_image, scaled_shape, to_tensor
from ..jobs import make_job
from ..losses import Objective
from ..optimize import Interrupted
from ..options import OPTIONS
from ..pipeline import Inputs, Settings, evaluate, finish_image, optimise, resolve_settings
from .flow import flow_and_mask, warp, warping_error
from .io import Clip, is_video_path, read_clip, write_video

#: The temporal term's weight by default (``temporal_weight``); see the module's formula.
DEFAULT_TEMPORAL_WEIGHT = 2e5

#: A flow provider: the backward flows and masks of the frame pairs ``(t - 1, t)`` given.
FlowMap = Callable[[Sequence[tuple[np.ndarray, np.ndarray]]], Iterable[tuple[np.ndarray, np.ndarray]]]


def _flow_pair(pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return flow_and_mask(*pair)


def local_flows(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The flows and masks of each pair, here, one after another."""
    return [_flow_pair(p) for p in pairs]


class TemporalObjective(Objective):
    """An objective plus the temporal term: ``weight / x.numel() * sum(mask * (x - target)^2)``.

    The term is added to the ``content`` entry of :meth:`terms` (it is a
    content-like penalty on the pixels), so the optimisers need no change;
    :attr:`temporal` holds its last value.  The base objective is not touched.
    """

    def __init__(self, base: Objective, target: Tensor, mask: Tensor, weight: float) -> None:
        self.__dict__.update(base.__dict__)
        self.base = base
        self.target = target
        self.mask = mask
        self.temporal_weight = weight
        self.temporal = 0.0

    def terms(self, image: Tensor) -> dict[str, Tensor]:
        t = self.base.terms(image)
        term = self.temporal_weight * (self.mask * (image - self.target) ** 2).sum() / image.numel()
        self.temporal = float(term.detach())
        return {**t, "content": t["content"] + term}


@dataclass
class FrameRecord:
    """One frame's metrics: its warping error against the previous stylised frame, evaluations, seconds, losses."""

    frame: int
    warping_error: float | None
    evaluations: int
    seconds: float
    style: float
    content: float
    tv: float
    temporal: float


@dataclass
class VideoResult:
    """How a video run ended: ``complete`` or ``interrupted`` (the finished frames are kept for a rerun)."""

    status: str
    output: Path | None
    frames: int
    done_now: int
    records: list[FrameRecord] = field(default_factory=list)
    seconds: float = 0.0


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


def stylize_video(
    source: str | os.PathLike[str],
    style: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    temporal: bool = True,
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT,
    frame_steps: int | None = None,
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
    ``flows`` computes flows and masks for many frame pairs (default: here,
    in turn; the Ray executor passes parallel tasks).  ``on_frame(record, total)``
    hears each finished frame.

    Raises:
        OptionError, InputError: before any work.
    """
    started = time.perf_counter()
    if not math.isfinite(temporal_weight) or temporal_weight < 0:
        raise OptionError("temporal_weight", f"{{option}} must be a finite number >= 0, not {temporal_weight}")
    if frame_steps is not None and frame_steps < 1:
        raise OptionError("frame_steps", f"{{option}} must be at least 1, not {frame_steps}")
    styles = [style] if isinstance(style, (str, os.PathLike)) else list(style)
    job = make_job(source, [str(s) for s in styles], None, **options)
    o = job.options
    first = resolve_settings(
        job.base_preset(), seed=o["seed"], device=o["device"], weights=o["weights"], **job.run_options()
    )
    later_steps = frame_steps if frame_steps is not None else max(1, round(first.preset.steps / 3))
    later = first if not temporal else resolve_settings(
        job.base_preset(), seed=o["seed"], device=o["device"], weights=o["weights"],
        **{**job.run_options(), "steps": later_steps},
    )  # fmt: skip
    out = Path(output)
    _check_output(out, Path(source))
    clip = read_clip(source, fps)
    style_pixels = [to_tensor(s) for s in job.styles]
    h, w = clip.frames[0].shape[:2]
    shape = scaled_shape(h, w, first.preset.size)
    contents = [resize(to_tensor(f), shape) for f in clip.frames]
    arrays = [_to_array(c) for c in contents]

    work = Path(work_dir) if work_dir is not None else default_work_dir(out)
    styled_dir = work / "frames"
    state = {
        "source": clip.fingerprint(),
        "styles": [file_sha256(s) for s in job.styles],
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in o.items() if _makes_pixels(k)},
        "temporal": temporal,
        "temporal_weight": temporal_weight if temporal else None,
        "frame_steps": later_steps if temporal else None,
        "shape": list(shape),
    }
    _prepare_work_dir(work, state)
    n = len(contents)
    done_before = 0
    while done_before < n and (styled_dir / _frame_name(done_before)).is_file():
        done_before += 1

    need_flows = temporal or metrics is not None
    todo = list(range(max(1, done_before), n)) if need_flows else []
    flow_list = list((flows or local_flows)([(arrays[t - 1], arrays[t]) for t in todo])) if todo else []
    flow_of = dict(zip(todo, flow_list))

    records = [FrameRecord(**json.loads(p.read_text())) for p in sorted((work / "metrics").glob("*.json"))][
        :done_before
    ]
    previous: Tensor | None = _quantised(to_tensor(styled_dir / _frame_name(done_before - 1))) if done_before else None
    status = "complete"
    done_now = 0
    for t in range(done_before, n):
        frame_started = time.perf_counter()
        settings = first if t == 0 or not temporal else later
        init: str | Tensor = settings.preset.init
        wrap = None
        mask_t: Tensor | None = None
        if t > 0 and need_flows:
            backward, mask = flow_of[t]
            assert previous is not None
        if t > 0 and temporal:
            target = _to_tensor(warp(_to_array(previous), backward))  # type: ignore[arg-type]
            mask_t = torch.from_numpy(mask)[None, None]
            init = target
            wrap = _temporal_wrapper(target, mask_t, temporal_weight, settings)
        inputs = Inputs(clip.frames[t], list(job.styles), contents[t], None, style_pixels, init)
        try:
            result = optimise(inputs, settings, should_stop=should_stop, wrap_objective=wrap)
        except Interrupted:
            status = "interrupted"
            break
        final = finish_image(result.image, inputs, settings)
        saved = save_image(final, styled_dir / _frame_name(t))
        current = _quantised(to_tensor(saved))
        terms = evaluate(result.objective, current, result.content)
        temporal_term = 0.0
        error = None
        if t > 0 and need_flows:
            assert previous is not None
            error = warping_error(_to_array(current), _to_array(previous), backward, mask)
            if temporal and mask_t is not None:
                temporal_term = float(temporal_weight * (mask_t * (current - target) ** 2).sum() / current.numel())
        record = FrameRecord(
            t + 1,
            error,
            settings.preset.steps,
            round(time.perf_counter() - frame_started, 3),
            terms["style"],
            terms["content"],
            terms["tv"],
            temporal_term,
        )
        (work / "metrics").mkdir(exist_ok=True)
        _save_text(work / "metrics" / f"frame_{t + 1:05d}.json", json.dumps(record.__dict__))
        records.append(record)
        previous = current
        done_now += 1
        if on_frame is not None:
            on_frame(record, n)
        if should_stop is not None and should_stop() and t + 1 < n:
            status = "interrupted"
            break
    written: Path | None = None
    if status == "complete":
        frames = [styled_dir / _frame_name(t) for t in range(n)]
        written = _write_output(frames, out, clip)
    if metrics is not None:
        _write_metrics(Path(metrics), records, temporal)
    return VideoResult(status, written, n, done_now, records, time.perf_counter() - started)


def _temporal_wrapper(
    target: Tensor, mask: Tensor, weight: float, settings: Settings
) -> Callable[[Objective, Tensor], Objective]:
    def wrap(objective: Objective, content: Tensor) -> Objective:
        shape = (content.shape[-2], content.shape[-1])
        t = target if tuple(target.shape[-2:]) == shape else resize(target, shape)
        m = mask if tuple(mask.shape[-2:]) == shape else (resize(mask.expand(1, 3, -1, -1), shape)[:, :1] > 0.5).float()
        return TemporalObjective(objective, t.to(settings.device), m.to(settings.device), weight)

    return wrap


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
    data = {
        "temporal": temporal,
        "frames": [r.__dict__ for r in records],
        "mean_warping_error": float(np.mean(errors)) if errors else None,
        "mean_style_loss": float(np.mean([r.style for r in records])) if records else None,
        "seconds": round(sum(r.seconds for r in records), 3),
    }
    text = json.dumps(data, indent=1)
    save_file_atomically(path, lambda f: f.write(text.encode()))


__all__ = [
    "DEFAULT_TEMPORAL_WEIGHT",
    "FrameRecord",
    "TemporalObjective",
    "VideoResult",
    "default_work_dir",
    "local_flows",
    "stylize_video",
]
