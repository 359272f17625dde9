"""Benchmark: the default preset against the seed's own code, pastiche and our `tutorial` preset, in one run.

    python bench/bench.py                       # Tübingen x Starry Night, 512 px
    python bench/bench.py --tutorial-steps 1000 # also run the tutorial to the end
    python bench/bench.py --seed-steps 0 --pastiche-steps 0   # without the peers

What users would run instead, timed in the same run with the same threads
(``--threads``, 2 by default):

- the seed's own code (TensorFlow 2 / Keras, ``bench/seed_tf.py``; needs the
  ``bench`` extra: ``pip install -e '.[bench]'``): its per-step time over
  ``--seed-steps`` steps after the step that compiles its ``tf.function``,
  which estimates its 1000 steps;
- pastiche's default (its CLI: L-BFGS, 1000 steps), at ``--pastiche-size``:
  its per-step time over ``--pastiche-steps`` steps estimates its whole run.

Our default then runs until its loss reaches the seed's own 1000-step loss
(``SEED_FINAL_LOSS``), and the benchmark prints the ratios.  A peer whose
package is missing is skipped with a message.

The tutorial preset's wall time is estimated from its per-step time over
``--probe-steps`` steps (1000 steps take about 40 minutes on a 2-core CPU);
its final loss is the number recorded in docs/benchmarks.md unless
``--tutorial-steps 1000`` measures it again.  Every loss is the seed objective
(``styletransfer loss``) of the saved 8-bit PNG at 512 px.

It prints a Markdown table: settings, wall time, final seed loss, speed-up over
the tutorial preset, per-step milliseconds at each scale, the achieved GFLOP/s
of VGG19's forward and backward pass against a peak measured in the same
run, and the peak RSS.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from styletransfer import loss_terms
from styletransfer.examples import example_path
from styletransfer.images import load_img, save_image
from styletransfer.optimize import Progress
from styletransfer.pipeline import resolve_settings, stylize_tensor
from styletransfer.vgg import LAYERS

ROOT = Path(__file__).resolve().parent.parent
#: The tutorial preset's 1000-step seed loss at 512 px on the saved PNG, measured 2026-11-28
#: with the channels-last network of commit 2dbe86e, 2 threads (the seed's own TensorFlow code:
#: 5.318e6; the same preset with the arithmetic of commit e9c2cca: 5.3545e6). See docs/benchmarks.md.
TUTORIAL_FINAL_LOSS = 5.3184e6
#: The seed's own TensorFlow code after its 1000 steps, evaluated on its saved PNG at 512 px.
SEED_FINAL_LOSS = 5.318e6


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


def peak_gflops(repeats: int = 5, dtype: torch.dtype = torch.float32) -> tuple[float, str]:
    """The best rate this machine reaches on a compute-bound kernel in ``dtype``, GFLOP/s.

    Two probes, each the median of ``repeats`` after a warm-up: a 4096x4096
    matmul, and a forward 3x3 convolution with 256 channels in and out at
    64x64 (oneDNN's kernels beat the matmul's on some CPUs).  In bf16 both
    run on bf16 tensors (on a CPU with AMX, its tile units).  Returns the
    higher rate and the probe's name.
    """
    kind = "fp32" if dtype == torch.float32 else "bf16"
    a, b = torch.randn(4096, 4096, dtype=dtype), torch.randn(4096, 4096, dtype=dtype)
    x = torch.randn(1, 256, 64, 64, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
    probes = {
        f"{kind} matmul 4096": (lambda: a @ b, 2 * 4096**3),
        f"{kind} 3x3 convolution 256->256 at 64x64": (
            lambda: torch.nn.functional.conv2d(x, w, padding=1),
            2 * 9 * 256 * 256 * 64 * 64,
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


def run_preset(
    name: str,
    content: Path,
    style: Path,
    steps: int | None,
    out: Path,
    size: int = 512,
    precision: str = "auto",
    target: float = SEED_FINAL_LOSS,
) -> dict:
    """Run a preset; return wall time, per-scale step times and the final seed loss of the PNG (at ``size``).

    The curve holds ``(step, seed loss, seconds)``.  In fp32 a step's loss is
    the exact seed loss the optimiser reports.  Under bf16 the reported loss
    is computed by the bf16 network (about 1% off), so once it comes within 3%
    of ``target`` each step's image is rounded to 8 bits and scored by the
    fp32 seed objective, until one reaches ``target``; the seconds those
    checks take are left out of the curve's times.
    """
    settings = resolve_settings(name, steps=steps, size=size, device="cpu", precision=precision)
    per_size: dict[int, list[float]] = {}
    curve: list[tuple[int, float, float]] = []
    last = [time.perf_counter()]
    checking = [0.0, settings.precision != "fp32"]  # seconds spent checking, still checking
    exact = None
    if checking[1]:
        from styletransfer.pipeline import build_objective

        tutorial = resolve_settings("tutorial", size=size, device="cpu")
        exact = build_objective(tutorial, load_img(content, size), [load_img(style, size)])

    def on_step(p: Progress) -> None:
        now = time.perf_counter()
        per_size.setdefault(p.size, []).append(now - last[0])
        loss = p.loss
        if exact is not None and checking[1] and p.size == size and loss <= 1.03 * target:
            with torch.no_grad():
                terms = exact.terms((p.tensor().clamp(0, 1) * 255).round() / 255)
            loss = float(terms["style"] + terms["content"] + terms["tv"])
            checking[1] = loss > target
            checking[0] += time.perf_counter() - now
        curve.append((p.step, loss, p.elapsed - checking[0]))
        last[0] = time.perf_counter()

    start = time.perf_counter()
    last[0] = start
    image = stylize_tensor(content, style, settings, callback=on_step)
    wall = time.perf_counter() - start
    save_image(image, out)
    loss = loss_terms(out, content, style, size=size)
    # The first step of each scale includes building its targets: drop it from the medians.
    step_ms = {s: 1000 * statistics.median(t[1:] or t) for s, t in per_size.items()}
    return {"wall": wall, "loss": loss, "step_ms": step_ms, "curve": curve}


def time_to_reach(curve: list[tuple[int, float, float]], target: float) -> tuple[int, float] | None:
    """The first (step, elapsed seconds) whose loss is at or below ``target``."""
    return next(((step, t) for step, loss, t in curve if loss <= target), None)


def machine_description() -> str:
    """The CPU model, its cores and threads, and whether it has AVX-512, AVX-512-BF16 and AMX tiles."""
    info: dict[str, str] = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}).stdout
        info = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}
    except OSError:
        pass
    flags = set(info.get("Flags", "").split())
    if not flags and Path("/proc/cpuinfo").is_file():  # no lscpu
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^flags\s*:(.*)$", text, re.M)
        flags = set(found.group(1).split()) if found else set()
        name = re.search(r"^model name\s*:(.*)$", text, re.M)
        if name and not info.get("Model name"):
            info["Model name"] = name.group(1).strip()
    model = info.get("Model name") or platform.processor() or platform.machine()
    cpus = info.get("CPU(s)") or str(os.cpu_count())
    per_core = info.get("Thread(s) per core", "")
    cores = (
        int(info["Core(s) per socket"]) * int(info.get("Socket(s)", "1") or 1)
        if info.get("Core(s) per socket", "").isdigit()
        else None
    )
    core_text = f"{cores} cores, {cpus} logical CPUs" if cores else f"{cpus} logical CPUs"
    if per_core:
        core_text += f" ({per_core} per core)"
    features = ", ".join(
        f"{flag} {'yes' if flag in flags else 'no'}" for flag in ("avx512f", "avx512_bf16", "amx_tile")
    )
    return f"{model}; {core_text}; {features if flags else 'CPU flags unknown'}"


def missing(module: str) -> bool:
    return importlib.util.find_spec(module) is None


def seed_tf_probe(content: Path, style: Path, steps: int, size: int, threads: int, out: Path) -> dict | str:
    """Time the seed's TensorFlow code (``bench/seed_tf.py``) in a child process.

    Returns:
        seed_tf's measurement (the losses, the first step's seconds, the later
        steps' seconds, the estimated 1000-step seconds), or why it was skipped.
    """
    if missing("tensorflow"):
        return "skipped: TensorFlow is not installed (pip install -e '.[bench]')"
    command = [sys.executable, str(ROOT / "bench/seed_tf.py"), "--json", "--steps", str(steps)]
    command += ["--content", str(content), "--style", str(style), "--max-dim", str(size), "--threads", str(threads)]
    command += ["--output", str(out)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
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
    command = pastiche_command(content, style, out, size, steps) + ["--info-step", "1"]
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


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


def print_peers(
    seed: dict | str,
    peer: dict | str,
    ours: dict,
    reached: tuple[int, float] | None,
    preset: str,
    pastiche_size: int | None,
) -> None:
    """The side-by-side table: the seed's code and pastiche (estimated) against ours to the seed's loss."""
    print("## Against the seed's own code and pastiche\n")
    ours_s = reached[1] if reached else None
    if reached:
        print(
            f"{preset} reached the seed's 1000-step loss {SEED_FINAL_LOSS:.4g} at step {reached[0]}, "
            f"after {reached[1]:.1f} s (from the start: loading, targets and all)"
        )
    else:
        print(f"{preset} did not reach the seed's 1000-step loss {SEED_FINAL_LOSS:.4g}: no ratio counts")
    print()
    print(f"| run | settings | ms/step | steps | time (s) | {preset} is faster by |")
    print("|---|---|---|---|---|---|")
    if isinstance(seed, dict):
        h, w = seed["shape"]
        ratio = f"{seed['estimated_1000_s'] / ours_s:.1f}x" if ours_s else "-"
        print(
            f"| the seed's TensorFlow code (estimated) | TensorFlow {seed['tensorflow']}, Adam, {w}x{h}, "
            f"{seed['threads']} threads; first step {seed['first_s']:.1f} s, median of {len(seed['step_s'])} more | "
            f"{1000 * seed['median_step_s']:.0f} | 1000 | {seed['estimated_1000_s']:.0f} | {ratio} |"
        )
    else:
        print(f"| the seed's TensorFlow code | {seed} | | | | |")
    if isinstance(peer, dict):
        d = peer["defaults"]
        size_text = f"--size {pastiche_size}" if pastiche_size else f"its default {d['size_pixels']} pixels"
        ratio = f"{peer['estimated_s'] / ours_s:.1f}x" if ours_s else "-"
        print(
            f"| pastiche's default (estimated) | {d['optimizer']}, {size_text} ({peer['size']}) | "
            f"{1000 * peer['per_step_s']:.0f} | {peer['default_steps']} | {peer['estimated_s']:.0f} | {ratio} |"
        )
    else:
        print(f"| pastiche | {peer} | | | | |")
    step_text = ", ".join(f"{s}: {ms:.0f}" for s, ms in sorted(ours["step_ms"].items()))
    print(
        f"| {preset} to the seed's loss | ours | {step_text} | {reached[0] if reached else '-'} | "
        f"{f'{ours_s:.1f}' if ours_s else 'not reached'} | 1.0x |"
    )
    print()
    if isinstance(seed, dict):
        losses = ", ".join(f"{v:.4e}" for v in seed["losses"][:3])
        print(
            f"the seed's code, loss before each of its first three updates: {losses} (the seed printed 6.538e8, 4.235e8, 2.452e8)"
        )
        if ours_s:
            print(f"ratio against the seed's code: {seed['estimated_1000_s'] / ours_s:.1f}x (target: 30x)")
    if isinstance(peer, dict) and ours_s:
        print(f"ratio against pastiche's default: {peer['estimated_s'] / ours_s:.1f}x")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", type=Path, default=example_path("tubingen.jpg"))
    parser.add_argument("--style", type=Path, default=example_path("starry_night.jpg"))
    parser.add_argument("--preset", default="fast", help="the preset to compare (default: fast)")
    parser.add_argument("--steps", type=int, default=None, help="override the compared preset's steps")
    parser.add_argument(
        "--precision", default="auto", help="the compared preset's --precision (auto: bf16 on a CPU with AMX)"
    )
    parser.add_argument("--probe-steps", type=int, default=24, help="tutorial steps timed for its per-step time")
    parser.add_argument(
        "--tutorial-steps", type=int, default=0, help="run the tutorial this far for its loss (1000: all)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out")
    parser.add_argument("--threads", type=int, default=2, help="threads for torch, TensorFlow and pastiche alike")
    parser.add_argument("--size", type=int, default=512, help="the long side (the targets assume 512)")
    parser.add_argument(
        "--seed-steps", type=int, default=24, help="steps of the seed's TensorFlow code to time (0: skip it)"
    )
    parser.add_argument("--pastiche-steps", type=int, default=24, help="pastiche steps to time (0: skip it)")
    parser.add_argument(
        "--pastiche-size", type=int, default=None, help="pastiche's --size (default: --size; 0: its own default)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    size = args.size
    pastiche_size = size if args.pastiche_size is None else args.pastiche_size

    # The peers first, each in its own process, with the same threads.
    seed: dict | str = "skipped: --seed-steps 0"
    if args.seed_steps:
        seed = seed_tf_probe(args.content, args.style, args.seed_steps, size, args.threads, args.out / "seed_probe.png")
    peer: dict | str = "skipped: --pastiche-steps 0"
    if args.pastiche_steps:
        peer = pastiche_probe(
            args.content, args.style, args.pastiche_steps, pastiche_size, args.threads, args.out / "pastiche_probe.png"
        )

    peak, peak_probe = peak_gflops()
    ours_settings = resolve_settings(args.preset, steps=args.steps, size=size, device="cpu", precision=args.precision)
    if ours_settings.precision == "bf16":  # the evaluation's convolutions run in bf16: their own peak
        peak, peak_probe = peak_gflops(dtype=torch.bfloat16)
    tut = resolve_settings("tutorial", device="cpu").preset.steps
    probe = run_preset("tutorial", args.content, args.style, args.probe_steps, args.out / "tutorial_probe.png", size)
    tut_step = probe["step_ms"][size] / 1000
    tut_wall = tut_step * tut
    tutorial_loss = TUTORIAL_FINAL_LOSS
    if args.tutorial_steps:
        full = run_preset("tutorial", args.content, args.style, args.tutorial_steps, args.out / "tutorial.png", size)
        tutorial_loss = full["loss"]["total"]
    ours = run_preset(
        args.preset, args.content, args.style, args.steps, args.out / f"{args.preset}.png", size, args.precision
    )
    reached = time_to_reach(ours["curve"], tutorial_loss)
    reached_seed = time_to_reach(ours["curve"], SEED_FINAL_LOSS)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    h, w = load_img(args.content, size).shape[-2:]
    eval_ms, profiled_ms, rows = evaluation_profile(args.content, args.style, args.preset, size, args.precision)
    parts = dict(rows)
    conv_ms = parts["convolutions, forward"] + parts["convolutions, backward to the input"]
    gflop = vgg_gflop(h, w)

    print(f"# styletransfer benchmark, {datetime.date.today()}, commit {git_commit()}")
    print(f"machine: {machine_description()}")
    print(
        f"{torch.get_num_threads()} threads, torch {torch.__version__}; content {args.content.name}, style {args.style.name}, {size} px\n"
    )
    print_peers(seed, peer, ours, reached_seed, args.preset, pastiche_size)
    print("| run | settings | wall time (s) | final seed loss | speed-up vs tutorial | ms/step by size |")
    print("|---|---|---|---|---|---|")
    print(
        f"| tutorial (estimated) | Adam, {tut} steps at {size} | {tut_wall:.0f} | {tutorial_loss:.4g} | 1.0x | "
        f"{size}: {1000 * tut_step:.0f} |"
    )
    p = ours_settings.preset
    settings_text = f"{p.optimizer}, {ours_settings.precision}, at most {p.steps} steps at {p.size}"
    step_text = ", ".join(f"{s}: {ms:.0f}" for s, ms in sorted(ours["step_ms"].items()))
    # A speed-up only counts at the tutorial's quality or better.
    speedup = (
        f"{tut_wall / ours['wall']:.1f}x"
        if ours["loss"]["total"] <= tutorial_loss
        else "none: loss above the tutorial's"
    )
    print(
        f"| {args.preset} | {settings_text} | {ours['wall']:.1f} | {ours['loss']['total']:.4g} | "
        f"{speedup} | {step_text} |"
    )
    print()
    t = ours["loss"]
    print(f"{args.preset} terms: style {t['style']:.4g}, content {t['content']:.4g}, tv {t['tv']:.4g}")
    print(f"loss at or below the tutorial's: {'yes' if t['total'] <= tutorial_loss else 'NO'}")
    if reached is None:
        print(f"{args.preset} did not reach the tutorial's loss {tutorial_loss:.4g} within {p.steps} steps")
    else:
        step, seconds = reached
        print(
            f"{args.preset} reached the tutorial's loss at step {step}, after {seconds:.1f} s: "
            f"{tut_wall / seconds:.1f}x sooner than the tutorial preset"
        )
    print("loss curve (step: loss):", ", ".join(f"{s}: {v:.3g}" for s, v, _ in ours["curve"] if s % 10 == 0))
    print(
        f"one evaluation (VGG19 forward + backward and the losses) at {w}x{h}: {eval_ms:.0f} ms (median of 3) for "
        f"{gflop:.1f} GFLOP of convolutions: {gflop / eval_ms * 1000:.0f} GFLOP/s = "
        f"{100 * gflop / eval_ms * 1000 / peak:.0f}% of this machine's {peak:.0f} GFLOP/s peak ({peak_probe}); the convolutions "
        f"alone: {gflop / conv_ms * 1000:.0f} GFLOP/s = {100 * gflop / conv_ms * 1000 / peak:.0f}%"
    )
    print(f"peak RSS: {rss_mib:.0f} MiB")
    total_ms = sum(rows_ms for _, rows_ms in rows)
    print(
        f"\nwhere one {args.preset} evaluation at {size} px goes ({profiled_ms:.0f} ms wall, torch.profiler self CPU time):\n"
    )
    print("| part | ms | share |")
    print("|---|---|---|")
    for group, ms in rows:
        print(f"| {group} | {ms:.0f} | {100 * ms / total_ms:.0f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
