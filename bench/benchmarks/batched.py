"""Batched against sequential stylisation on this machine: images per minute for a group of same-size contents.

Four crops of Tübingen (one shape) with The Starry Night, the ``fast``
preset's L-BFGS with a fixed number of evaluations (no early stop, so that
both runs do the same work), timed as :func:`styletransfer.pipeline.optimize`
one image after another and as :func:`styletransfer.pipeline.optimize_batch`
for all four at once, alternately, ``--repeats`` times; the medians are
printed (other work on a shared machine only adds time).

    python -m bench.benchmarks.batched                    # 4 images, 256 px, 10 evaluations, 1 thread
    python -m bench.benchmarks.batched --images 4 --size 256 --steps 10 --threads 1 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from PIL import Image

from styletransfer import example_path
from styletransfer.pipeline import decode_inputs, optimize, optimize_batch, resolve_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = resolve_settings("fast", size=args.size, steps=args.steps, stop_window=0, device=args.device)
    with Image.open(example_path("tubingen.jpg")) as im:
        w, h = im.size
        crops = [im.crop((k * 16, k * 12, w - 48 + k * 16, h - 36 + k * 12)) for k in range(args.images)]
    style = example_path("starry_night.jpg")
    optimize(decode_inputs(crops[0], style), resolve_settings("fast", size=args.size, steps=2, device=args.device))
    seq, bat = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for c in crops:
            optimize(decode_inputs(c, style), settings)
        seq.append(time.perf_counter() - start)
        start = time.perf_counter()
        optimize_batch([decode_inputs(c, style) for c in crops], settings)
        bat.append(time.perf_counter() - start)
        print(f"sequential {seq[-1]:.1f} s, batched {bat[-1]:.1f} s", flush=True)
    s, b = statistics.median(seq), statistics.median(bat)
    print(
        f"{args.images} images, {args.size} px, {args.steps} evaluations, {args.threads} thread(s), "
        f"median of {args.repeats}: sequential {60 * args.images / s:.2f} images/min ({s:.1f} s), "
        f"batched {60 * args.images / b:.2f} images/min ({b:.1f} s), batched/sequential {s / b:.2f}x"
    )


if __name__ == "__main__":
    main()
