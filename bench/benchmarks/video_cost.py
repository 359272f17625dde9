"""Seconds per evaluation of `video` (per frame) against `batch` (per image): the same process, size and threads.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.benchmarks.video_cost [--threads 1] [--size 256] [--steps 10]

Three frames of the pan (tests/clips.py) run as images (``run_job``, what a
batch item runs) after a warm-up that loads the network, then the four-frame
clip as a video twice: later frames with 3 and with ``--steps`` evaluations.
Prints the best time per evaluation of each.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from styletransfer.examples import example_path
from styletransfer.job import make_job
from styletransfer.runner import run_job
from styletransfer.video import stylize_video
from tests.clips import pan_frames, write_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    style = str(example_path("starry_night.jpg"))
    size, steps = args.size, args.steps
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frames = write_frames(pan_frames(4, size, size * 3 // 4, 4, 2), root / "clip")
        run_job(make_job(str(frames / "frame_00001.png"), [style], str(root / "warm.png"), size=size, steps=2))
        per = []
        for i in range(3):
            job = make_job(
                str(frames / f"frame_{i + 1:05d}.png"), [style], str(root / f"b{i}.png"), size=size, steps=steps
            )
            started = time.perf_counter()
            result = run_job(job)
            per.append((time.perf_counter() - started) / result.steps)
        print(f"batch: {min(per):.3f} s per evaluation (best of 3 images, {steps} evaluations each)")
        for later in sorted({3, steps}):
            video = stylize_video(frames, style, root / f"v{later}", size=size, steps=steps, frame_steps=later)
            first = video.records[0].seconds / steps
            rest = min(r.seconds / r.evaluations for r in video.records[1:])
            print(f"video: first frame {first:.3f} s per evaluation; later frames ({later} evaluations) {rest:.3f}")


if __name__ == "__main__":
    main()
