"""Benchmark: whole runs, start to saved file, of our presets against the seed's own code and pastiche.

    python -m bench.benchmarks.whole_run               # Tübingen x Starry Night, 512 px: fast and quality
    python -m bench.benchmarks.whole_run --presets fast        # the default alone (about 5 minutes)
    python -m bench.benchmarks.whole_run --seed-steps 0 --pastiche-steps 0   # without the peers

What users would run, timed in the same run with the same threads
(``--threads``, 2 by default), each in a fresh process:

- our presets (``--presets``): the CLI as a user types it, ``styletransfer
  CONTENT STYLE -o OUT --preset P --size 512``, timed from the spawn of the
  process to its exit (Python's start-up, the weights, the targets, the run
  and the saved PNG).  With ``--log`` and ``--save-every`` added (a CSV line
  and, every few steps, a PNG snapshot: a few milliseconds a step) so that
  the second column can be found: the time at which a snapshot's exact seed
  loss (8-bit PNG, fp32 network) first reaches the seed's 1000-step loss,
  counted from the process's start (the start-up is the process's wall time
  less the log's last elapsed time, so it also holds the final save: the
  column errs long);
- the seed's own code (TensorFlow 2 / Keras, ``tests/seed_tf.py``; needs the
  ``bench`` extra: ``pip install -e '.[bench]'``): its first step (which
  compiles its ``tf.function``) and its per-step time over ``--seed-steps``
  more steps estimate its 1000 steps;
- pastiche's default (its CLI: L-BFGS, 1000 steps), at ``--pastiche-size``:
  its per-step time over ``--pastiche-steps`` steps estimates its whole run;
- our ``tutorial`` preset (Adam, 1000 steps): estimated from ``--probe-steps``
  steps in a fresh process like the others (its 1000 steps take over half
  an hour); its loss is the one recorded in docs/benchmarks.md.

A peer whose package is missing is skipped with a message.  It prints one
Markdown table (whole run, final seed loss, time to the seed's loss, ratios),
then the default's per-evaluation time against this machine's measured
peak, the profile of one evaluation and the peak RSS.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench.common import (
    OUT,
    ROOT,
    SEED_FINAL_LOSS,
    TUTORIAL_FINAL_LOSS,
    git_commit,
    machine_description,
    missing,
    peak_rss_mib,
)
from styletransfer import loss_terms
from styletransfer.examples import example_path
from styletransfer.images import load_img
from styletransfer.pipeline import resolve_settings
from styletransfer.vgg import LAYERS


def vgg_gflop(height: int, width: int, last: str = "block5_conv2") -> float:
    """GFLOP of one forward plus one input-gradient backward pass up to ``last``.

    A 3x3 conv costs ``2 * 9 * C_in * C_out * H_l * W_l`` FLOP forward; the
    backward pass to the input (the weights are frozen) costs the same again.
    """
    flop = 0.0
    for info in LAYERS:
        if info.kind == "conv":
            h, w = height // info.factor, width // info.factor
            flop += 2 * 9 * info.in_channels * info.out_channels * h * w
        if info.name == last:
            break
    return 2 * flop / 1e9


def peak_gflops(
    repeats: int = 5, dtype: torch.dtype = torch.float32, n: int = 4096, side: int = 64
) -> tuple[float, str]:
    """The best rate this machine reaches on a compute-bound kernel in ``dtype``, GFLOP/s.

    Two probes, each the median of ``repeats`` after a warm-up: an ``n`` x
    ``n`` matmul, and a forward 3x3 convolution with 256 channels in and out
    at ``side`` x ``side`` (oneDNN's kernels beat the matmul's on some CPUs).
    In bf16 both run on bf16 tensors (on a CPU with AMX, its tile units; on
    one without AVX-512-BF16 or AMX, bf16 is emulated: a 4096 matmul then
    takes minutes).  Returns the higher rate and the probe's name.
    """
    kind = "fp32" if dtype == torch.float32 else "bf16"
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    x = torch.randn(1, 256, side, side, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
    probes = {
        f"{kind} matmul {n}": (lambda: a @ b, 2 * n**3),
        f"{kind} 3x3 convolution 256->256 at {side}x{side}": (
            lambda: torch.nn.functional.conv2d(x, w, padding=1),
            2 * 9 * 256 * 256 * side * side,
        ),
    }
    best = (0.0, "")
    for name, (run, flop) in probes.items():
        run()
        rates = []
        for _ in range(repeats):
            t = time.perf_counter()
            run()
            rates.append(flop / (time.perf_counter() - t) / 1e9)
        best = max(best, (statistics.median(rates), name))
    return best


#: Profiler op names grouped into the parts of one evaluation.
PROFILE_GROUPS: dict[str, tuple[str, ...]] = {
    "convolutions, forward": ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution", "aten::conv2d"),
    "convolutions, backward to the input": ("aten::convolution_backward",),
    "Gram matrices and their gradients (bmm)": ("aten::bmm",),
    "gradient sums where a layer feeds two paths": ("aten::add_", "aten::add"),
    "max pooling, forward and backward": ("aten::max_pool2d_with_indices", "aten::max_pool2d_with_indices_backward"),
    "ReLU, forward and backward": ("aten::clamp_min", "aten::relu", "aten::threshold_backward"),
}


def evaluation_profile(
    content: Path, style: Path, preset: str = "fast", size: int = 512, precision: str = "auto", repeats: int = 3
) -> tuple[float, float, list[tuple[str, float]]]:
    """Time one evaluation of ``preset``'s objective (forward + backward at ``size``) and profile it.

    After one warm-up evaluation, ``repeats`` evaluations are timed, then one
    more runs under torch.profiler.

    Returns:
        The median wall milliseconds of the timed evaluations, the wall
        milliseconds of the profiled one, and for each group of
        :data:`PROFILE_GROUPS` plus "everything else" the self CPU
        milliseconds of its ops in the profiled evaluation.
    """
    from torch.profiler import ProfilerActivity, profile

    from styletransfer.pipeline import build_objective

    settings = resolve_settings(preset, device="cpu", precision=precision)
    objective = build_objective(settings, load_img(content, size), [load_img(style, size)])
    x = load_img(content, size).requires_grad_(True)

    def evaluate() -> float:
        start = time.perf_counter()
        terms = objective.terms(x)
        torch.autograd.grad(terms["style"] + terms["content"] + terms["tv"], x)
        return 1000 * (time.perf_counter() - start)

    evaluate()
    median_ms = statistics.median(evaluate() for _ in range(repeats))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        profiled_ms = evaluate()
    self_ms: dict[str, float] = {}
    for event in prof.key_averages():
        self_ms[event.key] = self_ms.get(event.key, 0.0) + event.self_cpu_time_total / 1000
    rows = [(group, sum(self_ms.pop(op, 0.0) for op in ops)) for group, ops in PROFILE_GROUPS.items()]
    rows.append(("everything else", sum(self_ms.values())))
    return median_ms, profiled_ms, rows


def cli_run(
    preset: str,
    content: Path,
    style: Path,
    out: Path,
    size: int,
    threads: int,
    steps: int | None = None,
    every: int | None = 5,
) -> dict:
    """``preset``'s whole run as the CLI makes it, in a fresh process; its wall time, curve and snapshots' losses.

    Returns:
        ``wall`` (spawn to exit, s), ``loss`` (the saved PNG's seed terms),
        ``evaluations``, ``step_ms`` (median per size), ``startup`` (the wall
        time outside the log's elapsed span), ``reached`` (``(step, seconds
        from the start)`` of the first snapshot at or below
        :data:`SEED_FINAL_LOSS`, or ``None``) and ``precision``.
    """
    log = out.with_suffix(".csv")
    for old in [out, log, *out.parent.glob(f"{out.stem}.step*{out.suffix}")]:
        old.unlink(missing_ok=True)
    command = [sys.executable, "-m", "styletransfer", str(content), str(style), "-o", str(out), "--preset", preset]
    command += ["--size", str(size), "-q", "--log", str(log)]
    if every is not None:
        command += ["--save-every", str(every)]
    if steps is not None:
        command += ["--steps", str(steps)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env)
    wall = time.perf_counter() - start
    rows = list(csv.DictReader(log.open()))
    elapsed = [float(r["elapsed"]) for r in rows]
    startup = wall - elapsed[-1]
    per_size: dict[int, list[float]] = {}
    for r, before, now in zip(rows[1:], elapsed, elapsed[1:]):
        per_size.setdefault(int(r["size"]), []).append(now - before)
    reached = None
    for r in rows:
        step = int(r["step"])
        snapshot = out.with_name(f"{out.stem}.step{step:05d}{out.suffix}")
        if every is None or step % every or not snapshot.exists() or float(r["loss"]) > 1.03 * SEED_FINAL_LOSS:
            continue  # the logged loss (bf16's network under bf16: about 1% off) is only a filter
        if loss_terms(snapshot, content, style, size=size)["total"] <= SEED_FINAL_LOSS:
            reached = (step, startup + float(r["elapsed"]))
            break
    for snap in out.parent.glob(f"{out.stem}.step*{out.suffix}"):
        snap.unlink()
    settings = resolve_settings(preset, size=size, device="cpu", steps=steps)
    return {
        "wall": wall,
        "loss": loss_terms(out, content, style, size=size),
        "evaluations": len(rows),
        "step_ms": {k: 1000 * statistics.median(v) for k, v in per_size.items()},
        "startup": startup,
        "reached": reached,
        "precision": settings.precision,
    }


def seed_tf_probe(content: Path, style: Path, steps: int, size: int, threads: int, out: Path) -> dict | str:
    """Time the seed's TensorFlow code (``tests/seed_tf.py``) in a child process, from the repository's root.

    Returns:
        seed_tf's measurement (the losses, the first step's seconds, the later
        steps' seconds, the estimated 1000-step seconds), or why it was skipped.
    """
    if missing("tensorflow"):
        return "skipped: TensorFlow is not installed (pip install -e '.[bench]')"
    content, style, out = (Path(p).resolve() for p in (content, style, out))  # the child runs in ROOT
    command = [sys.executable, "-m", "tests.seed_tf", "--json", "--steps", str(steps)]
    command += ["--content", str(content), "--style", str(style), "--max-dim", str(size), "--threads", str(threads)]
    command += ["--output", str(out)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        return f"failed (exit {done.returncode}): {(done.stderr.strip().splitlines() or ['no message'])[-1]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def pastiche_defaults() -> dict | None:
    """pastiche's CLI defaults: optimizer, num_steps, size, size_pixels (``None`` without pastiche)."""
    if missing("pastiche"):
        return None
    from pastiche import pastiche

    args = pastiche._parse_args(["pastiche", "--content", "c", "--styles", "s", "--output", "o.png"])
    return {k: getattr(args, k) for k in ("optimizer", "num_steps", "size", "size_pixels", "content_layers")}


def pastiche_command(content: Path, style: Path, output: Path, size: int | None, steps: int | None) -> list[str]:
    """pastiche's CLI with its defaults; ``size``/``steps`` only when given."""
    command = [sys.executable, "-m", "pastiche", "--content", str(content), "--styles", str(style)]
    command += ["--output", str(output)]
    if size:
        command += ["--size", str(size)]
    if steps is not None:
        command += ["--num-steps", str(steps)]
    return command


def pastiche_probe(content: Path, style: Path, steps: int, size: int | None, threads: int, out: Path) -> dict | str:
    """Time pastiche's CLI for ``steps`` steps (``--info-step 1``) and estimate its default run.

    pastiche prints the seconds since its start after every step.  Step 1 is
    its first evaluation with a backward pass; the per-step time is the mean
    of steps 2..N; the default run is estimated as the time to step 1 plus
    ``num_steps - 1`` such steps.

    Returns:
        ``per_step_s``, ``estimated_s``, ``default_steps``, ``size`` (its
        width x height), ``wall_s`` (this probe's process), or why it was skipped.
    """
    defaults = pastiche_defaults()
    if defaults is None:
        return "skipped: pastiche is not installed (pip install pastiche)"
    steps = max(2, steps)
    command = [*pastiche_command(content, style, out, size, steps), "--info-step", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return f"failed (exit {done.returncode}): {(done.stderr.strip().splitlines() or ['no message'])[-1]}"
    elapsed = {int(m[1]): float(m[2]) for m in re.finditer(r"^(\d+)\s+([\d.]+)\s+\S+\s*$", done.stdout, re.M)}
    shape = re.search(r"^size: (\S+)", done.stdout, re.M)
    if 1 not in elapsed or steps not in elapsed:
        return f"failed: no step times in pastiche's output ({done.stdout[-200:]!r})"
    per_step = (elapsed[steps] - elapsed[1]) / (steps - 1)
    total = defaults["num_steps"]
    return {
        "per_step_s": per_step,
        "first_step_s": elapsed[1],
        "estimated_s": elapsed[1] + (total - 1) * per_step,
        "default_steps": total,
        "size": shape.group(1) if shape else "?",
        "wall_s": wall,
        "defaults": defaults,
    }


def print_table(seed: dict | str, peer: dict | str, tutorial: dict, ours: dict[str, dict], size: int) -> None:
    """The headline table: each program's whole run and when it reaches the seed's 1000-step loss."""
    base = next(iter(ours))
    base_wall = ours[base]["wall"]
    print(
        f"| program | whole run, start to saved file (s) | final seed loss | reaches the seed's loss after (s) | {base} is faster by (whole runs) |"
    )
    print("|---|---|---|---|---|")
    if isinstance(seed, dict):
        print(
            f"| the seed's TensorFlow code (1000 steps, estimated: first step {seed['first_s']:.1f} s + 999 x "
            f"{1000 * seed['median_step_s']:.0f} ms) | {seed['estimated_1000_s']:.0f} | {SEED_FINAL_LOSS:.4g} | "
            f"{seed['estimated_1000_s']:.0f} | {seed['estimated_1000_s'] / base_wall:.1f}x |"
        )
    else:
        print(f"| the seed's TensorFlow code | {seed} | | | |")
    if isinstance(peer, dict):
        print(
            f"| pastiche's default ({peer['defaults']['optimizer']}, {peer['default_steps']} steps, {peer['size']}, "
            f"estimated: {1000 * peer['per_step_s']:.0f} ms a step) | {peer['estimated_s']:.0f} | - | - | "
            f"{peer['estimated_s'] / base_wall:.1f}x |"
        )
    else:
        print(f"| pastiche | {peer} | | | |")
    print(
        f"| our `tutorial` (Adam, 1000 steps, estimated: {tutorial['probe_steps']} steps in {tutorial['wall']:.0f} s, "
        f"{tutorial['step_ms']:.0f} ms a step) | {tutorial['estimated_s']:.0f} | {TUTORIAL_FINAL_LOSS:.4g} | "
        f"{tutorial['estimated_s']:.0f} | {tutorial['estimated_s'] / base_wall:.1f}x |"
    )
    for name, r in ours.items():
        reached = f"{r['reached'][1]:.0f} (evaluation {r['reached'][0]})" if r["reached"] else "not reached"
        step_text = ", ".join(f"{k} px: {v:.0f} ms" for k, v in sorted(r["step_ms"].items()))
        print(
            f"| `{name}` ({r['precision']}, {r['evaluations']} evaluations, {step_text}) | {r['wall']:.0f} | "
            f"{r['loss']['total']:.4g} | {reached} | {base_wall / r['wall']:.1f}x |"
        )
    print()


def tutorial_probe(content: Path, style: Path, out: Path, size: int, threads: int, steps: int) -> dict:
    """The ``tutorial`` preset's 1000 steps estimated from ``steps`` of them in a fresh process (its CLI)."""
    probe = cli_run("tutorial", content, style, out, size, threads, steps=steps, every=None)
    step_ms = probe["step_ms"][size]
    return {
        "probe_steps": steps,
        "wall": probe["wall"],
        "step_ms": step_ms,
        "estimated_s": probe["wall"] + (1000 - steps) * step_ms / 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", type=Path, default=example_path("tubingen.jpg"))
    parser.add_argument("--style", type=Path, default=example_path("starry_night.jpg"))
    parser.add_argument("--presets", nargs="+", default=["fast", "quality"], help="our presets to run whole")
    parser.add_argument(
        "--steps", type=int, default=None, help="cap our presets' steps (a quick check, not a whole run)"
    )
    parser.add_argument("--probe-steps", type=int, default=24, help="tutorial steps timed for its per-step time")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--threads", type=int, default=2, help="threads for torch, TensorFlow and pastiche alike")
    parser.add_argument("--size", type=int, default=512, help="the long side (the losses assume 512)")
    parser.add_argument(
        "--seed-steps", type=int, default=24, help="steps of the seed's TensorFlow code to time (0: skip it)"
    )
    parser.add_argument("--pastiche-steps", type=int, default=24, help="pastiche steps to time (0: skip it)")
    parser.add_argument(
        "--pastiche-size", type=int, default=None, help="pastiche's --size (default: --size; 0: its own default)"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the per-evaluation profile")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    size = args.size
    pastiche_size = size if args.pastiche_size is None else args.pastiche_size

    seed: dict | str = "skipped: --seed-steps 0"
    if args.seed_steps:
        seed = seed_tf_probe(args.content, args.style, args.seed_steps, size, args.threads, args.out / "seed_probe.png")
    peer: dict | str = "skipped: --pastiche-steps 0"
    if args.pastiche_steps:
        peer = pastiche_probe(
            args.content, args.style, args.pastiche_steps, pastiche_size, args.threads, args.out / "pastiche_probe.png"
        )
    tutorial = tutorial_probe(
        args.content, args.style, args.out / "tutorial_probe.png", size, args.threads, args.probe_steps
    )
    ours = {
        name: cli_run(name, args.content, args.style, args.out / f"{name}.png", size, args.threads, args.steps)
        for name in args.presets
    }

    print(f"# styletransfer benchmark, {datetime.date.today()}, commit {git_commit()}")
    print(f"machine: {machine_description()}")
    print(
        f"{args.threads} threads, torch {torch.__version__}; content {args.content.name}, style {args.style.name}, {size} px\n"
    )
    print_table(seed, peer, tutorial, ours, size)
    for name, r in ours.items():
        t = r["loss"]
        print(
            f"{name}: style {t['style']:.4g}, content {t['content']:.4g}, tv {t['tv']:.4g}; "
            f"{t['total'] / TUTORIAL_FINAL_LOSS:.3f} of the tutorial's loss; start-up and save {r['startup']:.1f} s"
        )
    if isinstance(seed, dict):
        losses = ", ".join(f"{v:.4e}" for v in seed["losses"][:3])
        print(
            f"the seed's code, loss before each of its first three updates: {losses} (the seed printed 6.538e8, 4.235e8, 2.452e8)"
        )
    if args.no_profile:
        return 0
    base = args.presets[0]
    precision = ours[base]["precision"]
    peak, peak_probe = peak_gflops(dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
    h, w = load_img(args.content, size).shape[-2:]
    eval_ms, profiled_ms, rows = evaluation_profile(args.content, args.style, base, size, precision)
    parts = dict(rows)
    conv_ms = parts["convolutions, forward"] + parts["convolutions, backward to the input"]
    gflop = vgg_gflop(h, w)
    print(
        f"\none {base} evaluation (VGG19 forward + backward and the losses, {precision}) at {w}x{h}: {eval_ms:.0f} ms "
        f"(median of 3) for {gflop:.1f} GFLOP of convolutions: {gflop / eval_ms * 1000:.0f} GFLOP/s = "
        f"{100 * gflop / eval_ms * 1000 / peak:.0f}% of this machine's {peak:.0f} GFLOP/s peak ({peak_probe}); the convolutions "
        f"alone: {gflop / conv_ms * 1000:.0f} GFLOP/s = {100 * gflop / conv_ms * 1000 / peak:.0f}%"
    )
    print(f"peak RSS of this process (the profile): {peak_rss_mib():.0f} MiB")
    total_ms = sum(ms for _, ms in rows)
    print(f"\nwhere one evaluation goes ({profiled_ms:.0f} ms wall, torch.profiler self CPU time):\n")
    print("| part | ms | share |")
    print("|---|---|---|")
    for group, ms in rows:
        print(f"| {group} | {ms:.0f} | {100 * ms / total_ms:.0f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
