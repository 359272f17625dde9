"""A video as the driver prepares it (:class:`PreparedVideo`): the options checked, the clip read, the frames done.

:func:`prepare_video` checks the options, reads the clip at the working size
and prepares the work directory (:mod:`styletransfer.video.workdir`);
:class:`PreparedVideo` knows the frames already done and the frame pairs whose
flows the others need, hands the rest to the frame loop as plain data
(:meth:`PreparedVideo.frame_work`, :func:`~styletransfer.video.frames.stylize_frames`),
keeps each finished frame (:meth:`PreparedVideo.save_frame`) and writes the
output and metrics at the end (:meth:`PreparedVideo.finish`).
:func:`prepare_videos` prepares several videos; they run here
(:func:`~styletransfer.video.run.run_here`) or on Ray actors
(:mod:`styletransfer.video.ray_videos`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..errors import OptionError
from ..fileio import file_sha256, save_file_atomically
from ..front_options import DEFAULT_INSTANT_BLEND, DEFAULT_TEMPORAL_WEIGHT, FRAME_STEPS_DIVISOR
from ..images import resize, save_image, scaled_shape, to_tensor
from ..job import make_job
from ..memory import available_bytes
from ..options import OPTIONS
from ..pipeline import Settings, resolve_settings
from .flow import Flows
from .frames import FrameRecord, FrameWork, quantised
from .io import Clip, is_video_path, read_clip
from .temporal import MAX_LONG_TERM, reach, to_array
from .workdir import default_work_dir, frame_name, prepare_work_dir, save_text, write_metrics, write_output


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


@dataclass
class PreparedVideo:
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
        while k < len(self.contents) and (self.frames_dir / frame_name(k)).is_file():
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
        """The working-size frames of each pair, ``(H, W, 3)`` float32, for a :data:`~styletransfer.video.flow.FlowMap`."""
        return [(to_array(self.contents[s]), to_array(self.contents[t])) for s, t in pairs]

    def frame_work(self, flows: Flows) -> FrameWork:
        """The frames still to do, as plain data (the earlier stylised frames read from the work directory)."""
        start = self.done()
        span = reach(self.temporal, self.long_term)
        earlier = {s: quantised(to_tensor(self.frames_dir / frame_name(s))) for s in range(max(0, start - span), start)}
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
        save_text(self.work / "metrics" / f"frame_{t + 1:05d}.json", json.dumps(record.__dict__))
        path = self.frames_dir / frame_name(t)
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
        frames = [self.frames_dir / frame_name(t) for t in range(n)]
        written = write_output(frames, self.output, self.clip) if complete else None
        if self.metrics is not None:
            write_metrics(self.metrics, records, self.temporal)
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
) -> PreparedVideo:
    """Check the options, read the clip and prepare its work directory (frames made with other settings go).

    With the ``instant`` preset ``temporal_weight`` is the blend ``b`` of the
    warped previous output (:func:`~styletransfer.video.instant.blend_previous`),
    in [0, 1]; left at :data:`~styletransfer.front_options.DEFAULT_TEMPORAL_WEIGHT` it is
    :data:`~styletransfer.front_options.DEFAULT_INSTANT_BLEND`.  ``frame_steps``
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
    later_steps = frame_steps if frame_steps is not None else max(1, round(first.preset.steps / FRAME_STEPS_DIVISOR))
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
    prepare_work_dir(work, state)
    return PreparedVideo(
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

    ``temporal_weight`` is ``b`` itself, in [0, 1]; :data:`~styletransfer.front_options.DEFAULT_TEMPORAL_WEIGHT`
    (the option left out) gives :data:`~styletransfer.front_options.DEFAULT_INSTANT_BLEND`.

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


def prepare_videos(
    sources: Sequence[str | os.PathLike[str]],
    style: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    work_dir: str | os.PathLike[str] | None = None,
    metrics: str | os.PathLike[str] | None = None,
    **options: Any,
) -> list[PreparedVideo]:
    """One :class:`PreparedVideo` per source.

    One source: ``output``, ``work_dir`` and ``metrics`` are its own, as for
    :func:`~styletransfer.video.run.stylize_video`.  Several: ``output`` is a directory holding, for
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
    videos = []
    for source, name in zip(sources, names):
        target = out / name if is_video_path(name) or Path(source).is_dir() else out / f"{Path(name).stem}.mp4"
        videos.append(
            prepare_video(
                source,
                style,
                target,
                work_dir=None if work_dir is None else Path(work_dir) / name,
                metrics=None if metrics is None else Path(metrics) / f"{Path(name).stem}.json",
                **options,
            )
        )
    return videos


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
