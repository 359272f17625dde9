"""``styletransfer video IN [IN...] -o OUT --style S...``: videos with temporal consistency (:mod:`styletransfer.video`)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import Any

from ..front_options import DEFAULT_TEMPORAL_WEIGHT, VIDEO_OPTIONS
from .common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    PROG,
    _add_executor_options,
    _add_front_options,
    _add_table_options,
    _err,
    _front_end,
    _job_options,
    _Parser,
    _say,
    _stop_on_signals,
)


def _cmd_video(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog=f"{PROG} video",
        description=(
            "Stylise every frame of IN (a video file PyAV reads, or a directory of frames) into OUT (a video file: "
            "H.264 MP4, the audio copied; or a directory of PNG frames). Each frame after the first starts from the "
            "previous stylised frame warped by the optical flow (OpenCV's DIS), with a temporal loss weighted by the "
            "forward-backward certainty mask (Ruder et al. 2016). Resumable: the frames are kept in --work-dir. "
            "With several INs, OUT is a directory: each video gets OUT/NAME.mp4 (or OUT/NAME/ for a directory of "
            "frames) and its own work directory; with --executor ray each video runs on its own actor."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="IN", help="video file(s) or directories of frames")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="video file (.mp4...) or directory; a directory for several",
    )
    parser.add_argument("--style", nargs="+", required=True, metavar="S", help="style image(s)")
    _add_front_options(parser, VIDEO_OPTIONS)
    _add_executor_options(
        parser, workers=None, workers_help="with --executor ray: the most actors (default: one a video)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no line per frame")
    _add_table_options(parser)
    args = parser.parse_args(argv)
    if args.workers is not None and args.executor != "ray":
        parser.error("--workers needs --executor ray: local videos run one after another")
    front_end = _front_end("video", "video")
    videos = front_end.prepare_videos(
        args.inputs,
        args.style,
        args.output,
        temporal=not args.no_temporal,
        temporal_weight=DEFAULT_TEMPORAL_WEIGHT if args.temporal_weight is None else args.temporal_weight,
        frame_steps=args.frame_steps,
        long_term=args.long_term,
        work_dir=args.work_dir,
        metrics=args.metrics,
        fps=args.fps,
        **_job_options(args),
    )
    several = len(videos) > 1
    stop = threading.Event()

    def on_frame(video: Any, record: Any, total: int) -> None:
        if not args.quiet:
            error = "" if record.warping_error is None else f", warping error {record.warping_error:.5f}"
            name = f"{video.name} " if several else ""
            print(f"{name}frame {record.frame}/{total}: {record.seconds:.2f} s{error}", file=sys.stderr)

    with _stop_on_signals(stop, []):
        if args.executor == "ray":
            runner = _front_end("video.ray_videos", "ray").RayVideos(
                args.workers or len(videos), address=args.ray_address, weights=args.weights
            )
            try:
                results = runner.run(videos, should_stop=stop.is_set, on_frame=on_frame)
            finally:
                runner.close()
        else:
            results = []
            for video in videos:
                if stop.is_set():
                    break
                results.append(
                    front_end.run_here(video, None, stop.is_set, lambda r, n, video=video: on_frame(video, r, n))
                )
    code = 0
    for video, result in zip(videos, results):
        name = f"{video.name}: " if several else ""
        if result.status == "failed":
            _err(f"{name}{result.error}")
            code = EXIT_FAILURE
        elif result.status != "complete":
            _err(f"{name}stopped after {result.done_now} new frame(s); run the same command again to go on")
            code = code or EXIT_INTERRUPTED
        else:
            _say(args, f"wrote {result.output} ({result.frames} frames, {result.done_now} stylised now)")
    if len(results) < len(videos):
        _err(f"stopped before {len(videos) - len(results)} video(s); run the same command again to go on")
        code = code or EXIT_INTERRUPTED
    return code
