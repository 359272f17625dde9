"""Per-step time and peak memory of a preset at several sizes.

    python -m bench.benchmarks.highres --sizes 512 1024 2048 --steps 3

Each size runs in its own process (so that its peak RSS is its own) for
``--steps`` steps of the preset (default ``fast``); the table gives the median
step time, the projected wall time of the preset's full step count, and the
peak RSS.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from bench.common import ROOT, peak_rss_mib


def measure(preset: str, size: int, steps: int) -> dict:
    """Run ``steps`` steps at ``size`` in this process; return step times and peak RSS."""
    from styletransfer.examples import example_path
    from styletransfer.memory import lbfgs_history
    from styletransfer.pipeline import resolve_settings, stylize_tensor

    # One scale only (coarse_size = size): the per-step cost at this size.
    settings = resolve_settings(preset, size=size, steps=steps, device="cpu", coarse_size=size)
    stamps: list[float] = []
    start = time.perf_counter()
    image = stylize_tensor(
        example_path("tubingen.jpg"),
        example_path("starry_night.jpg"),
        settings,
        callback=lambda p: stamps.append(time.perf_counter()),
    )
    gaps = [b - a for a, b in zip([start, *stamps], stamps)]
    return {
        "size": size,
        "step_s": statistics.median(gaps[1:] or gaps),
        "first_s": gaps[0],
        "full_steps": resolve_settings(preset, size=size, device="cpu").preset.steps,
        "rss_mib": peak_rss_mib(),
        # L-BFGS keeps `history` pairs of image-sized float32 vectors once its memory is full
        # (fewer at high resolution: lbfgs_history bounds them by the preset's history_mib).
        "history_mib": (
            2 * lbfgs_history(settings.preset, image.numel()) * image.numel() * 4 / 2**20
            if settings.preset.optimizer == "lbfgs"
            else 0.0
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.preset, args.one, args.steps)))
        return 0
    print(
        f"| size | ms/step (median of {args.steps}) | projected {args.preset} wall time "
        "| peak RSS (MiB) | + full L-BFGS history (MiB) |"
    )
    print("|---|---|---|---|---|")
    for size in args.sizes:
        cmd = [sys.executable, "-m", __spec__.name, "--preset", args.preset, "--steps", str(args.steps)]
        proc = subprocess.run([*cmd, "--one", str(size)], capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            print(f"| {size} | failed: {proc.stderr.strip().splitlines()[-1:]} | | | |")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        wall = r["step_s"] * r["full_steps"]
        print(
            f"| {size} | {1000 * r['step_s']:.0f} | {wall / 60:.1f} min ({r['full_steps']} steps) "
            f"| {r['rss_mib']:.0f} | {r['history_mib']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
