"""How close ``--dry-run``'s estimate comes: the plan, then the real run, at several sizes.

For each size the script asks :func:`styletransfer.plan` for the estimate, then
runs the same job with :func:`styletransfer.run_job` and times it (wall time
from the job's start, and the median seconds per evaluation at each scale from
the progress events).  The estimate is scaled to the evaluations the run really
made, so that a run stopped early by a convergence test is compared fairly; a
bf16 run's fp32 finish is not told apart in the progress events, so there the
scaled estimate counts every evaluation at the bf16 time, and the last column
gives the plan's bound (its ``seconds``: the switch as early as the rule
allows, the whole budget).

    python -m bench.benchmarks.estimate             # 256, 512 and 1024 px, fast preset
    python -m bench.benchmarks.estimate --sizes 256 --steps 30
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from styletransfer import example_path, make_job, plan, run_job
from styletransfer.events import JobStart, Observer


class Timer(Observer):
    """The seconds between successive evaluations, by scale."""

    def __init__(self) -> None:
        self.last = 0.0
        self.by_size: dict[int, list[float]] = {}

    def start(self, run: JobStart) -> None:
        self.last = time.perf_counter()

    def progress(self, p: object) -> None:
        now = time.perf_counter()
        self.by_size.setdefault(p.size, []).append(now - self.last)  # type: ignore[attr-defined]
        self.last = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument(
        "--steps", type=int, default=None, help="evaluations at the first scale (default: the preset's)"
    )
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--content", default=str(example_path("tubingen.jpg")))
    parser.add_argument("--style", default=str(example_path("starry_night.jpg")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    content, style = args.content, args.style
    print(f"threads {torch.get_num_threads()}, preset {args.preset}, steps {args.steps or 'preset'}")
    header = (
        "| size | scales | evaluations run | estimated s/eval | measured s/eval (median) "
        "| estimated s | measured s | ratio | plan's bound s |"
    )
    print(header)
    print("|---" * 9 + "|")
    for size in args.sizes:
        options = {
            "preset": args.preset,
            "size": size,
            "device": "cpu",
            **({"steps": args.steps} if args.steps else {}),
        }
        started = time.perf_counter()
        estimate = plan(content, style, **options)
        plan_seconds = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as tmp:
            timer = Timer()
            result = run_job(make_job(content, style, Path(tmp) / "out.png", **options), [timer])
        per_scale = [timer.by_size.get(max(h, w), []) for h, w in estimate["scales"]]
        ran = [len(t) for t in per_scale]
        predicted = sum((n + 1) * t for n, t in zip(ran, estimate["seconds_per_evaluation"]))
        measured = [statistics.median(t) if t else float("nan") for t in per_scale]
        print(
            f"| {size} | {' + '.join(f'{w}x{h}' for h, w in estimate['scales'])} | {' + '.join(map(str, ran))} "
            f"| {' / '.join(f'{t:.3f}' for t in estimate['seconds_per_evaluation'])} "
            f"| {' / '.join(f'{t:.3f}' for t in measured)} | {predicted:.0f} | {result.seconds:.0f} "
            f"| {result.seconds / predicted:.2f} | {estimate['seconds']:.0f} |"
        )
        print(f"  (the plan itself took {plan_seconds:.1f} s; status {result.status})", flush=True)


if __name__ == "__main__":
    main()
