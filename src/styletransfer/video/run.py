"""A prepared video run in this process: its flows computed (here, or by a given flow map), then the frame loop.

:func:`stylize_video` prepares a video (:func:`~styletransfer.video.prepared.prepare_video`)
and runs it here (:func:`run_here`), keeping each frame as it is done.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..front_options import DEFAULT_TEMPORAL_WEIGHT
from .flow import FlowMap, Flows, local_flows
from .frames import FrameRecord, stylize_frames
from .prepared import PreparedVideo, VideoResult, prepare_video


def needed_flows(video: PreparedVideo, flows: FlowMap | None = None) -> Flows:
    """The flows of the pairs ``video`` still needs, from ``flows`` (default: here, in turn)."""
    pairs = video.pairs()
    return dict(zip(pairs, (flows or local_flows)(video.arrays(pairs)))) if pairs else {}


def run_here(
    video: PreparedVideo,
    flows: FlowMap | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_frame: Callable[[FrameRecord, int], None] | None = None,
) -> VideoResult:
    """Stylise the frames ``video`` still needs in this process, keeping each one as it is done."""
    started = time.perf_counter()
    work = video.frame_work(needed_flows(video, flows))
    done_now = 0
    for t, picture, record in stylize_frames(work, should_stop):
        video.save_frame(t, picture, record)
        done_now += 1
        if on_frame is not None:
            on_frame(record, work.count)
    return video.finish(done_now, time.perf_counter() - started)


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
    video = prepare_video(
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
    return run_here(video, flows, should_stop, on_frame)
