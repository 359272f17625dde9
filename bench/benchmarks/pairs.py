"""Benchmark: the default preset against the `tutorial` preset on a varied set of pairs.

    python -m bench.benchmarks.pairs --reference-only   # measure (and cache) the tutorial's 1000-step losses
    python -m bench.benchmarks.pairs                    # the default on every pair at 384 and 512 px
    python -m bench.benchmarks.pairs --size 384 --set tune --pairs dark_frida

Eight content x style pairs: photos and styles from ``../shared/data/images``
(``--images DIR``), some photos made dark, bright, low-contrast, grayscale or
saturated by fixed formulas (:data:`TRANSFORMS`), so that the set holds images
with many channel values at exactly 0 or 1, where a box-constrained optimiser
can get stuck.  Nothing from the image folder is copied into the repository.

For each pair the `tutorial` preset's 1000-step seed loss is measured once and
cached in ``bench/data/pairs_reference.json`` (keyed by pair and size, with the
commit, date and thread count that measured it); later runs reuse it.  Each
run then times ``--probe-steps`` tutorial steps before and after running the
compared preset to its end (the tutorial's wall time is estimated as the mean
of the two per-step medians x 1000), with the same thread count in the same
process.  On a shared machine the wall-time ratio is noisy; the evaluation
ratio (1000 tutorial steps / the compared preset's evaluations, one VGG
forward and backward each) does not depend on the load.  Losses are the seed objective of the
final image rounded to 8 bits (as saved), at the run's size.

It prints a Markdown table per set (``tune``: the pairs the default's numbers
were tuned on; ``check``: the others) and size, and for each size the worst
pair's loss ratio (against the issue's 1.05x) and its largest time fraction
(the compared preset's wall time over the tutorial's, against 1/4).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from bench.common import DATA, OUT, SHARED_IMAGES, git_commit, seed_loss
from styletransfer.images import load_img, save_image
from styletransfer.optimize import Progress
from styletransfer.pipeline import resolve_settings, stylize_tensor

REFERENCE = DATA / "pairs_reference.json"


def _luma(x: Tensor) -> Tensor:
    """Rec. 601 luma of a ``(1, 3, H, W)`` image, ``(1, 1, H, W)``."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


#: Deterministic photo edits, applied to the image loaded at the run's size.
TRANSFORMS: dict[str, Callable[[Tensor], Tensor]] = {
    "photo": lambda x: x,
    # Night: a strong gamma, darkened, then a floor: >10% of channel values become exactly 0.
    "dark": lambda x: (0.55 * x.pow(2.4) - 0.03).clamp(0.0, 1.0),
    # Over-exposed: lifted and gained until the highlights clip to exactly 1.
    "bright": lambda x: (1.5 * x.pow(0.6) + 0.1).clamp(0.0, 1.0),
    # Low contrast: a quarter of the range around mid-grey.
    "lowcontrast": lambda x: 0.5 + 0.25 * (x - 0.5),
    # Grayscale: the luma in all three channels.
    "gray": lambda x: _luma(x).expand_as(x).contiguous(),
    # Saturated: chroma x3 around each pixel's luma, clipped (many 0s and 1s).
    "saturated": lambda x: (_luma(x) + 3.0 * (x - _luma(x))).clamp(0.0, 1.0),
}


@dataclass(frozen=True)
class Pair:
    name: str
    content: str  # a file in the image folder
    transform: str  # a key of TRANSFORMS
    style: str
    set: str  # "tune" or "check"


#: Tuned on the first four, checked on the last four.
PAIRS: tuple[Pair, ...] = (
    Pair("dark_tubingen-frida", "tubingen.jpg", "dark", "frida_kahlo.jpg", "tune"),
    Pair("bright_goldengate-starry", "golden_gate.jpg", "bright", "starry_night.jpg", "tune"),
    Pair("tubingen-scream", "tubingen.jpg", "photo", "the_scream.jpg", "tune"),
    Pair("saturated_goldengate-matisse", "golden_gate.jpg", "saturated", "woman-with-hat-matisse.jpg", "tune"),
    Pair("dark_goldengate-shipwreck", "golden_gate.jpg", "dark", "shipwreck.jpg", "check"),
    Pair("lowcontrast_tubingen-shipwreck", "tubingen.jpg", "lowcontrast", "shipwreck.jpg", "check"),
    Pair("gray_goldengate-scream", "golden_gate.jpg", "gray", "the_scream.jpg", "check"),
    Pair("bright_tubingen-frida", "tubingen.jpg", "bright", "frida_kahlo.jpg", "check"),
)


def pair_images(pair: Pair, images: Path, size: int) -> tuple[Tensor, Tensor]:
    """The pair's content (transformed) and style, loaded at long side ``size``."""
    content = TRANSFORMS[pair.transform](load_img(images / pair.content, size))
    return content.contiguous(), load_img(images / pair.style, size)


def bounds_fractions(x: Tensor) -> tuple[float, float]:
    """The fractions of channel values at exactly 0 and exactly 1 after rounding to 8 bits."""
    q = (x.clamp(0, 1) * 255).round()
    return float((q == 0).float().mean()), float((q == 255).float().mean())


def run(preset: str, content: Tensor, style: Tensor, size: int, steps: int | None = None, **overrides) -> dict:
    """Run ``preset``; its wall time, per-step seconds, evaluations, final image and loss curve."""
    settings = resolve_settings(preset, size=size, steps=steps, device="cpu", **overrides)
    times: list[float] = []
    curve: list[float] = []
    last = [0.0]

    def on_step(p: Progress) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        curve.append(p.loss)
        last[0] = now

    start = last[0] = time.perf_counter()
    image = stylize_tensor(content, style, settings, callback=on_step)
    wall = time.perf_counter() - start
    step_s = statistics.median(times[1:] or times)  # the first step includes building the targets
    return {"wall": wall, "step_s": step_s, "evaluations": len(times), "image": image, "curve": curve}


def load_reference() -> dict:
    return json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {}


def reference_key(pair: Pair, size: int) -> str:
    return f"{pair.name}@{size}"


def measure_reference(pair: Pair, images: Path, size: int, out: Path) -> dict:
    """The tutorial preset's 1000 steps on ``pair``; cached in :data:`REFERENCE`."""
    content, style = pair_images(pair, images, size)
    r = run("tutorial", content, style, size)
    save_image(r["image"], out / f"{pair.name}_{size}_tutorial.png")
    terms = seed_loss(r["image"], content, style, size)
    zeros, ones = bounds_fractions(r["image"])
    entry = {
        "loss": terms["total"],
        "style": terms["style"],
        "content": terms["content"],
        "tv": terms["tv"],
        "steps": r["evaluations"],
        "step_s": r["step_s"],
        "wall_s": r["wall"],
        "zeros": zeros,
        "ones": ones,
        "commit": git_commit(),
        "date": datetime.date.today().isoformat(),
        "threads": torch.get_num_threads(),
    }
    ref = load_reference()
    ref[reference_key(pair, size)] = entry
    REFERENCE.write_text(json.dumps(ref, indent=1, sort_keys=True) + "\n")
    return entry


def print_tables(rows: list[dict], args: argparse.Namespace, size: int) -> None:
    """The Markdown tables (tune set, check set), the worst pair and the median ratios.

    Each row's tutorial loss and bound fractions are read from the reference cache
    now, so rows saved before their reference was measured can be tabulated later.
    """
    ref = load_reference()
    for r in rows:
        r.setdefault("evaluation_ratio", 1000 / r["evaluations"])
        t = ref.get(f"{r['pair']}@{size}")
        if t is not None:
            r.update(
                tutorial_loss=t["loss"], tutorial_zeros=t["zeros"], tutorial_ones=t["ones"], ratio=r["loss"] / t["loss"]
            )
    print(f"\n# styletransfer on a varied set, {datetime.date.today()}, commit {git_commit()}")
    print(f"{args.threads} thread(s), torch {torch.__version__}, {size} px, preset {args.preset}\n")
    for which in ("tune", "check"):
        part = [r for r in rows if r["set"] == which]
        if not part:
            continue
        print(f"\n{which} set:\n")
        print(
            "| pair | tutorial 1000-step loss | fast loss | ratio | evaluations | time ratio (tutorial / fast) | evaluation ratio | % zeros fast / tutorial (content) | % ones fast / tutorial (content) |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for r in part:
            print(
                f"| {r['pair']} | {r['tutorial_loss']:.4g} | {r['loss']:.4g} | {r['ratio']:.3f} | {r['evaluations']} | "
                f"{r['time_ratio']:.1f}x | {r['evaluation_ratio']:.1f}x | {100 * r['zeros']:.1f} / {100 * r['tutorial_zeros']:.1f} ({100 * r['content_zeros']:.1f}) | "
                f"{100 * r['ones']:.1f} / {100 * r['tutorial_ones']:.1f} ({100 * r['content_ones']:.1f}) |"
            )
    if rows:
        worst = max(rows, key=lambda r: r["ratio"])
        print(f"\nworst pair: {worst['pair']} (loss ratio {worst['ratio']:.3f})")
        print(f"median time ratio: {statistics.median(r['time_ratio'] for r in rows):.2f}x")
        print(f"median evaluation ratio: {statistics.median(r['evaluation_ratio'] for r in rows):.2f}x")
        print(f"median loss ratio: {statistics.median(r['ratio'] for r in rows):.3f}")
        print(f"all pairs at or below the tutorial's loss: {'yes' if all(r['ratio'] <= 1 for r in rows) else 'NO'}")
        slowest = max(rows, key=lambda r: r["wall_s"] / r["tutorial_wall_s"])
        print(
            f"{size} px: worst loss ratio {worst['ratio']:.3f} ({worst['pair']}, target 1.05); "
            f"largest time fraction {slowest['wall_s'] / slowest['tutorial_wall_s']:.3f} ({slowest['pair']}, target 0.25)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=SHARED_IMAGES)
    parser.add_argument("--size", type=int, nargs="+", default=[384, 512], help="long sides, each run in turn")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", choices=("tune", "check", "all"), default="all")
    parser.add_argument("--pairs", nargs="*", default=None, help="only these pairs (names or name prefixes)")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--steps", type=int, default=None, help="override the compared preset's steps (its cap)")
    parser.add_argument("--stop-rtol", type=float, default=None, help="override the preset's stop_rtol")
    parser.add_argument(
        "--stop-window", type=int, default=None, help="override the preset's stop_window (0: no early stop)"
    )
    parser.add_argument(
        "--coarse-size", type=int, default=None, help="override the preset's coarse_size (coarse-to-fine below --size)"
    )
    parser.add_argument("--refine-steps", type=int, default=None, help="override the preset's refine_steps")
    parser.add_argument("--probe-steps", type=int, default=12, help="tutorial steps timed for its per-step time")
    parser.add_argument("--reference-only", action="store_true", help="only measure missing tutorial references")
    parser.add_argument(
        "--no-reference", action="store_true", help="measure no missing reference (its loss shows as nan)"
    )
    parser.add_argument("--out", type=Path, default=OUT / "pairs")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument(
        "--table", type=Path, nargs="+", default=None, help="only print the tables of rows saved by --json"
    )
    args = parser.parse_args(argv)
    if args.table:
        for size in args.size:
            print_tables(
                [r for f in args.table for r in json.loads(f.read_text()) if r.get("size", size) == size], args, size
            )
        return 0
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    pairs = [p for p in PAIRS if args.set in ("all", p.set)]
    if args.pairs:
        pairs = [p for p in pairs if any(p.name.startswith(q) for q in args.pairs)]

    for size in args.size:
        rows = run_size(pairs, size, args)
        if not args.reference_only:
            print_tables(rows, args, size)
    return 0


def run_size(pairs: list[Pair], size: int, args: argparse.Namespace) -> list[dict]:
    """Measure the missing references at ``size``, then (unless ``--reference-only``) the compared preset on each pair."""
    ref = load_reference()
    for pair in pairs:
        if reference_key(pair, size) not in ref and not args.no_reference:
            print(f"measuring the tutorial's 1000 steps on {pair.name} at {size} px ...", flush=True)
            e = measure_reference(pair, args.images, size, args.out)
            print(f"  {e['loss']:.4g} in {e['wall_s']:.0f} s", flush=True)
    if args.reference_only:
        return []
    ref = load_reference()

    rows = []
    for pair in pairs:
        content, style = pair_images(pair, args.images, size)
        missing = {"loss": math.nan, "zeros": math.nan, "ones": math.nan}
        tutorial = load_reference().get(reference_key(pair, size), missing)
        # The tutorial's per-step time: the mean of two probes, before and after the compared run,
        # so that a change in the machine's load during the run counts for both.
        before = run("tutorial", content, style, size, steps=args.probe_steps)
        r = run(
            args.preset,
            content,
            style,
            size,
            steps=args.steps,
            stop_rtol=args.stop_rtol,
            stop_window=args.stop_window,
            coarse_size=args.coarse_size,
            refine_steps=args.refine_steps,
        )
        after = run("tutorial", content, style, size, steps=args.probe_steps)
        tut_wall = (before["step_s"] + after["step_s"]) / 2 * 1000
        save_image(r["image"], args.out / f"{pair.name}_{size}_{args.preset}.png")
        terms = seed_loss(r["image"], content, style, size)
        zeros, ones = bounds_fractions(r["image"])
        row = {
            "pair": pair.name,
            "size": size,
            "preset": args.preset,
            "set": pair.set,
            "tutorial_loss": tutorial["loss"],
            "loss": terms["total"],
            "style": terms["style"],
            "ratio": terms["total"] / tutorial["loss"],
            "evaluations": r["evaluations"],
            "wall_s": r["wall"],
            "tutorial_wall_s": tut_wall,
            "time_ratio": tut_wall / r["wall"],
            "step_s": r["step_s"],
            "evaluation_ratio": 1000 / r["evaluations"],
            "zeros": zeros,
            "ones": ones,
            "tutorial_zeros": tutorial["zeros"],
            "tutorial_ones": tutorial["ones"],
            "content_zeros": bounds_fractions(content)[0],
            "content_ones": bounds_fractions(content)[1],
            "curve": r["curve"],
        }
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
        if args.json:  # after every pair, so that a long run's rows survive it
            path = (
                args.json if len(args.size) == 1 else args.json.with_name(f"{args.json.stem}_{size}{args.json.suffix}")
            )
            path.write_text(json.dumps(rows, indent=1) + "\n")

    return rows


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
