"""Throughput of `batch` (1 worker, 2 local workers, Ray with 2 actors), Ray's start-up, and `video`'s per-frame time.

    RAY_USAGE_STATS_ENABLED=0 .venv/bin/python -m bench.benchmarks.batch_video [--steps 30] [--sizes 256 512] [--frames 4]
        [--skip-ray] [--skip-batch] [--json results.json]

Eight 256 px images (crops of the bundled photos) with the Starry Night, each
with ``--steps`` evaluations (30 at least for the issue's measurement; the
default preset's stopping rule cannot stop before 50); each configuration runs
the same batch into a fresh directory.  Ray's start-up is ``ray.init`` plus
the actors ready (the weights shipped and written on each).  The video timings
use a pan of ``--frames`` frames (tests/clips.py) at each size: the first frame
gets ``--steps`` evaluations, the later ones a third.  Every row also gives the
seconds per evaluation: a video frame costs its evaluations plus a fixed part
(the content targets' forward pass, the metrics' forward pass, the PNG).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
from PIL import Image

from styletransfer.batch import make_executor, make_items, run_batch
from styletransfer.examples import example_path
from tests.clips import pan_frames, write_frames


def images(directory: Path) -> list[Path]:
    paths = []
    for name in ("tubingen.jpg", "shipwreck.jpg", "the_scream.jpg", "starry_night.jpg"):
        with Image.open(example_path(name)) as im:
            w, h = im.size
            for i, box in enumerate([(0, 0, w * 3 // 4, h * 3 // 4), (w // 4, h // 4, w, h)]):
                p = directory / f"{Path(name).stem}_{i}.png"
                im.convert("RGB").crop(box).save(p)
                paths.append(p)
    return paths


def batch_run(name: str, workers: int, contents: list[Path], style: Path, root: Path, steps: int) -> dict:
    out = root / name
    items = make_items(contents, [style], out, size=256, steps=steps, device="cpu")
    started = time.perf_counter()
    executor = make_executor("ray" if name.startswith("ray") else "local", workers)
    actors = getattr(executor, "actors", [])
    if actors:  # Ray: wait until every actor is up with its weights file
        executor.ray.get([a.pid.remote() for a in actors])
    ready = time.perf_counter()
    try:
        summary = run_batch(items, out, executor)
    finally:
        executor.close()
    seconds = time.perf_counter() - ready
    assert summary.failed == 0, summary.records
    return {
        "config": name,
        "images": len(items),
        "evaluations_per_image": steps,
        "seconds": round(seconds, 1),
        "images_per_minute": round(60 * len(items) / seconds, 2),
        "seconds_per_evaluation_per_worker": round(seconds * workers / (len(items) * steps), 3),
        "startup_seconds": round(ready - started, 1),
    }


def video_run(size: int, steps: int, frames: int, root: Path, style: Path) -> dict:
    import torch

    from styletransfer.video import stylize_video

    clip = write_frames(pan_frames(frames, size, size * 3 // 4, 4, 2), root / f"clip{size}")
    result = stylize_video(clip, style, root / f"video{size}", size=size, steps=steps, device="cpu")
    first, later = result.records[0], result.records[1:]
    later_seconds = sum(r.seconds for r in later) / len(later)
    return {
        "size": size,
        "threads": torch.get_num_threads(),
        "frames": result.frames,
        "first_frame_seconds": first.seconds,
        "later_frame_seconds": round(later_seconds, 2),
        "evaluations": [first.evaluations, later[0].evaluations],
        "later_seconds_per_evaluation": round(later_seconds / later[0].evaluations, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="video sizes")
    parser.add_argument("--frames", type=int, default=4, help="frames of each video (2 at least)")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--threads", type=int, help="torch threads of the video runs (default: torch's, the cores)")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    args = parser.parse_args()
    if args.frames < 2 or args.steps < 1:
        parser.error("--frames must be 2 or more and --steps 1 or more")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        contents = images(root)
        style = example_path("starry_night.jpg")
        if not args.skip_batch:
            configs = [("local-1", 1), ("local-2", 2)] + ([] if args.skip_ray else [("ray-2", 2)])
            for name, workers in configs:
                rows.append(batch_run(name, workers, contents, style, root, args.steps))
                print(json.dumps(rows[-1]), flush=True)
        for size in args.sizes:
            rows.append(video_run(size, args.steps, args.frames, root, style))
            print(json.dumps(rows[-1]), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
