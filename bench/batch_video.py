"""Throughput of `batch` (1 worker, 2 local workers, Ray with 2 actors), Ray's start-up, and `video`'s per-frame time.

    .venv/bin/python bench/batch_video.py [--steps 30] [--sizes 256 512] [--skip-ray]

Eight 256 px images (crops of the bundled photos) with the Starry Night; each
configuration runs the same batch into a fresh directory.  The video timings
use the README's pan clip (tests/clips.py) at each size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from styletransfer.batch import make_executor, plan_items, run_batch  # noqa: E402
from styletransfer.examples import example_path  # noqa: E402
from tests.clips import pan_frames, write_frames  # noqa: E402


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
    items = plan_items(contents, [style], out, size=256, steps=steps, device="cpu")
    started = time.perf_counter()
    executor = make_executor("ray" if name.startswith("ray") else "local", workers)
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
        "seconds": round(seconds, 1),
        "images_per_minute": round(60 * len(items) / seconds, 2),
        "startup_seconds": round(ready - started, 1),
    }


def video_run(size: int, steps: int, root: Path, style: Path) -> dict:
    from styletransfer.video import stylize_video

    frames = write_frames(pan_frames(6, size, size * 3 // 4, 4, 2), root / f"clip{size}")
    result = stylize_video(frames, style, root / f"video{size}", size=size, steps=steps, device="cpu")
    later = [r.seconds for r in result.records[1:]]
    return {
        "size": size,
        "frames": result.frames,
        "first_frame_seconds": result.records[0].seconds,
        "later_frame_seconds": round(sum(later) / len(later), 2),
        "evaluations": [result.records[0].evaluations, result.records[1].evaluations],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    args = parser.parse_args()
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
            rows.append(video_run(size, args.steps, root, style))
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
