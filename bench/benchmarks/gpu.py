"""The GPU check of issue 15, prepared to run in one go on a lent GPU.

    PYTHONPATH=src python3 -m bench.benchmarks.gpu --json $OUT/gpu.json   # on CUDA (a few minutes on an H200)
    python -m bench.benchmarks.gpu --device cpu --sizes 64 --batch 2 --batch-size 64 \\
        --batch-evaluations 3 --run-size 64 --run-steps 5              # the smoke test the suite runs

For each precision the device can run (``fp32``, ``tf32``, ``bf16`` on CUDA;
``fp32``, ``bf16`` on a CPU) it measures:

1. **Per evaluation** (one forward and one backward of the seed objective,
   the ``fast`` preset's network at ``--sizes``, 512 and 2048 px by default):
   the median wall time of ``--repeats`` evaluations after two warm-ups, the
   device synchronised around each; with ``--compile`` also the evaluation
   under ``torch.compile`` (its first calls excluded).
2. **A batch**: ``--batch`` (16) crops of Tübingen at ``--batch-size`` (512)
   px with The Starry Night, ``--batch-evaluations`` L-BFGS evaluations each
   (no early stop) through :func:`~styletransfer.pipeline.optimize_batch`:
   images per second, against the images per second of one image alone
   (:func:`~styletransfer.pipeline.optimize`, the same evaluations).
3. **The result**: the default (``fast``, its stopping rule, at most
   ``--run-steps``) at ``--run-size`` (512) px, its wall time, evaluations
   and seed loss (the tutorial's objective of the 8-bit result, computed in
   fp32 on the CPU), and that loss over the fp32 run's.
4. **The instant preset** (with the ``instant`` extra): one pass of the
   feed-forward network (the style vector cached) at ``--instant-sizes``
   (512 and 2048 px by default), the median of ``--repeats`` after two
   warm-ups, per precision (``bf16`` runs it under autocast).
5. **Tiles** (issue 27): the ``fast`` objective at ``--tiled-size`` (1024) px
   whole and in tiles of ``--tile`` (512) px, on the device, at the content
   image plus a little noise: the largest relative difference of a loss term
   and the gradient's (tiled against whole; fp32 should agree to about 1e-6),
   and the median seconds of each evaluation (for ``--tiled-precisions``).

It prints a Markdown table per part with the device's name; ``--json`` writes
every number.  Bundled example images only, so it runs from a bare checkout.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from bench.common import median_seconds, perturbed, relative_changes, seed_loss, terms_and_gradient
from styletransfer import example_path
from styletransfer.errors import MissingExtra, OptionError
from styletransfer.images import load_img
from styletransfer.pipeline import (
    Settings,
    build_objective,
    decode_inputs,
    optimize,
    optimize_batch,
    resolve_settings,
)

PRECISIONS = ("fp32", "tf32", "bf16")


def device_name(device: torch.device) -> str:
    """The GPU's name (CUDA), or the CPU's model and thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} thread(s)"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def settings_for(precision: str, device: str, **overrides: Any) -> Settings | str:
    """The ``fast`` preset's settings under ``precision``, or the reason the device cannot run it."""
    try:
        return resolve_settings("fast", device=device, precision=precision, **overrides)
    except OptionError as e:
        return str(e)


def timed(fn: Callable[[], object], device: torch.device, repeats: int, warmups: int = 2) -> float:
    """The median wall seconds of ``repeats`` calls of ``fn`` after ``warmups``, the device synchronised around each."""

    def synchronized() -> None:
        fn()
        synchronize(device)

    synchronize(device)
    return median_seconds(synchronized, repeats, warmups)


def evaluation_seconds(settings: Settings, size: int, repeats: int, compiled: bool = False) -> float:
    """One evaluation's median seconds (forward, seed losses, backward to the image) at long side ``size``."""
    content = load_img(example_path("tubingen.jpg"), size)
    objective = build_objective(settings, content, [load_img(example_path("starry_night.jpg"), size)])
    x = content.to(settings.device).requires_grad_(True)

    def loss(image: torch.Tensor) -> torch.Tensor:
        terms = objective.terms(image)
        return terms["style"] + terms["content"] + terms["tv"]

    f = torch.compile(loss) if compiled else loss

    def evaluate() -> None:
        torch.autograd.grad(f(x), x)

    return timed(evaluate, settings.device, repeats, warmups=3 if compiled else 2)


def crops(n: int) -> list[Image.Image]:
    """``n`` different crops of Tübingen (one shape), each shifted by 16x12 px from the last, cycling after 8."""
    with Image.open(example_path("tubingen.jpg")) as im:
        w, h = im.size
        return [im.crop((k % 8 * 16, k % 8 * 12, w - 128 + k % 8 * 16, h - 96 + k % 8 * 12)) for k in range(n)]


def batch_rates(settings: Settings, n: int, repeats: int) -> dict[str, float]:
    """Images per second for ``n`` contents batched, and one content alone (same evaluations, no early stop)."""
    style = example_path("starry_night.jpg")
    inputs = [decode_inputs(c, style) for c in crops(n)]
    optimize(inputs[0], settings)  # warm-up: the network, the style targets, cuDNN's autotuner
    alone = timed(lambda: optimize(inputs[0], settings), settings.device, repeats, warmups=0)
    batched = timed(lambda: optimize_batch(inputs, settings), settings.device, repeats, warmups=1)
    return {"alone_s": alone, "batched_s": batched, "alone_images_s": 1 / alone, "batched_images_s": n / batched}


def default_run(settings: Settings) -> dict[str, Any]:
    """The default's whole run on Tübingen x The Starry Night: wall seconds, evaluations and seed loss."""
    inputs = decode_inputs(example_path("tubingen.jpg"), example_path("starry_night.jpg"))
    evaluations = [0]

    def count(_: object) -> None:
        evaluations[0] += 1

    synchronize(settings.device)
    start = time.perf_counter()
    result = optimize(inputs, settings, callback=count)
    synchronize(settings.device)
    wall = time.perf_counter() - start
    size = settings.preset.size
    content = load_img(example_path("tubingen.jpg"), size)
    style = load_img(example_path("starry_night.jpg"), size)
    terms = seed_loss(result.image.float(), content, style, size)
    return {"wall_s": wall, "evaluations": evaluations[0], "seed_loss": terms["total"]}


def tiled_check(settings: Settings, size: int, tile: int, repeats: int) -> dict[str, float]:
    """The objective at long side ``size`` whole and in tiles of ``tile``: their differences and median seconds."""
    content = load_img(example_path("tubingen.jpg"), size)
    style = load_img(example_path("starry_night.jpg"), size)
    whole = build_objective(settings, content, [style])
    tiled = build_objective(settings, content, [style], tile=tile)
    x = perturbed(content.to(settings.device))
    return {
        **relative_changes(terms_and_gradient(whole, x), terms_and_gradient(tiled, x)),
        "whole_s": timed(lambda: terms_and_gradient(whole, x), settings.device, repeats),
        "tiled_s": timed(lambda: terms_and_gradient(tiled, x), settings.device, repeats),
    }


def instant_seconds(device: torch.device, precision: str, size: int, repeats: int) -> float:
    """One instant pass's median seconds (the transformer, the style vector cached) at long side ``size``."""
    from styletransfer.instant import style_vector, transform

    content = load_img(example_path("tubingen.jpg"), size)
    vector = style_vector(load_img(example_path("starry_night.jpg"), 512), device)
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
    return timed(lambda: transform(content, vector, device, precision), device, repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--repeats", type=int, default=10, help="timed evaluations per size and precision")
    parser.add_argument("--compile", action="store_true", help="also time the evaluation under torch.compile")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--batch-evaluations", type=int, default=20)
    parser.add_argument("--run-size", type=int, default=512)
    parser.add_argument("--run-steps", type=int, default=None, help="the default's cap (None: the preset's 1000)")
    parser.add_argument("--instant-sizes", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--tiled-size", type=int, default=1024)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--tiled-precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device: this is the GPU check (use --device cpu for the smoke test)")
    out: dict[str, Any] = {
        "device": device_name(device),
        "torch": torch.__version__,
        "evaluation": [],
        "batch": [],
        "run": [],
        "instant": [],
        "tiles": [],
    }
    print(f"# bench/gpu.py on {out['device']}, torch {torch.__version__}\n", flush=True)

    print("| precision | size | ms per evaluation | compiled |\n|---|---|---|---|", flush=True)
    for precision in PRECISIONS:
        for size in args.sizes:
            s = settings_for(precision, args.device, size=size)
            if isinstance(s, str):
                print(f"| {precision} | {size} | {s} | |", flush=True)
                break
            ms = 1000 * evaluation_seconds(s, size, args.repeats)
            row: dict[str, Any] = {"precision": precision, "size": size, "ms": ms}
            if args.compile:
                try:
                    row["compiled_ms"] = 1000 * evaluation_seconds(s, size, args.repeats, compiled=True)
                except Exception as e:
                    row["compiled_error"] = f"{type(e).__name__}: {e}".splitlines()[0]
            out["evaluation"].append(row)
            compiled = f"{row['compiled_ms']:.1f}" if "compiled_ms" in row else row.get("compiled_error", "-")
            print(f"| {precision} | {size} | {ms:.1f} | {compiled} |", flush=True)

    print(
        f"\n| precision | batch of {args.batch} at {args.batch_size} px: images/s | one alone: images/s | batched / alone |"
        "\n|---|---|---|---|",
        flush=True,
    )
    for precision in PRECISIONS:
        overrides = {"size": args.batch_size, "steps": args.batch_evaluations, "stop_window": 0}
        s = settings_for(precision, args.device, **overrides)
        if isinstance(s, str):
            continue
        r = batch_rates(s, args.batch, repeats=3)
        out["batch"].append({"precision": precision, **r})
        print(
            f"| {precision} | {r['batched_images_s']:.2f} | {r['alone_images_s']:.2f} | "
            f"{r['batched_images_s'] / r['alone_images_s']:.2f}x |",
            flush=True,
        )

    print(
        f"\n| precision | default at {args.run_size} px: wall s | evaluations | seed loss | / fp32's |\n|---|---|---|---|---|",
        flush=True,
    )
    fp32_loss = None
    for precision in PRECISIONS:
        s = settings_for(precision, args.device, size=args.run_size, steps=args.run_steps)
        if isinstance(s, str):
            continue
        r = default_run(s)
        fp32_loss = r["seed_loss"] if precision == "fp32" else fp32_loss
        r["ratio_to_fp32"] = r["seed_loss"] / fp32_loss if fp32_loss else float("nan")
        out["run"].append({"precision": precision, **r})
        print(
            f"| {precision} | {r['wall_s']:.1f} | {r['evaluations']} | {r['seed_loss']:.4g} | "
            f"{r['ratio_to_fp32']:.4f} |",
            flush=True,
        )
    print("\n| precision | instant pass: size | ms |\n|---|---|---|", flush=True)
    for precision in PRECISIONS:
        if isinstance(settings_for(precision, args.device), str):  # tf32 off CUDA
            continue
        for size in args.instant_sizes:
            try:
                ms = 1000 * instant_seconds(device, precision, size, args.repeats)
            except MissingExtra as e:
                print(f"| {precision} | {size} | {e} |", flush=True)
                break
            out["instant"].append({"precision": precision, "size": size, "ms": ms})
            print(f"| {precision} | {size} | {ms:.1f} |", flush=True)
    print(
        f"\n| precision | {args.tiled_size} px in tiles of {args.tile}: loss terms rel. | gradient rel. "
        "| whole ms | tiled ms |\n|---|---|---|---|---|",
        flush=True,
    )
    for precision in args.tiled_precisions:
        s = settings_for(precision, args.device, size=args.tiled_size)
        if isinstance(s, str):
            continue
        t = tiled_check(s, args.tiled_size, args.tile, args.repeats)
        out["tiles"].append({"precision": precision, **t})
        print(
            f"| {precision} | {t['terms_rel']:.1e} | {t['grad_rel']:.1e} | {1000 * t['whole_s']:.1f} | "
            f"{1000 * t['tiled_s']:.1f} |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
