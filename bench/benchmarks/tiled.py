"""Tiled evaluation: print sizes on small memory, and what the tiles cost against a whole evaluation.

    python -m bench.benchmarks.tiled print --size 4096 --steps 2
    python -m bench.benchmarks.tiled overhead --size 1024 --tiles 512 768 1024 --repeats 3

``print`` runs the ``fast`` preset at one scale of ``--size`` (Tübingen x The
Starry Night, ``coarse_size = size``) for ``--steps`` L-BFGS evaluations
without ``tile_size``: the memory guard plans the tiles.  It reports the
tiles, the time to the first evaluation's end (the targets, tiled too, and
one evaluation), each later evaluation, the peak RSS and the memory guard's
estimate.

``overhead`` times one evaluation (the terms, then the gradient, as the
optimisers do) whole and in tiles of each ``--tiles`` side, alternating, in
one process, and gives the medians and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import torch

from bench.common import peak_rss_mib

if TYPE_CHECKING:
    from styletransfer.pipeline import Inputs, Settings


def _inputs(size: int) -> tuple[Settings, Inputs]:
    from styletransfer.examples import example_path
    from styletransfer.pipeline import decode_inputs, resolve_settings

    settings = resolve_settings("fast", size=size, device="cpu", coarse_size=size)
    inputs = decode_inputs(
        example_path("tubingen.jpg"), example_path("starry_night.jpg"), "content", preset=settings.preset
    )
    return settings, inputs


def print_size(size: int, steps: int, out: str | None, tile: int | None = None) -> dict[str, object]:
    """One scale of ``size`` for ``steps`` evaluations, tiled as the memory guard plans it (or in tiles of ``tile``)."""
    from styletransfer.images import save_image
    from styletransfer.memory import available_bytes, run_bytes
    from styletransfer.pipeline import optimize, shape_at
    from styletransfer.pipeline.tiles import run_tiles

    settings, inputs = _inputs(size)
    settings = replace(settings, preset=replace(settings.preset, steps=steps, stop_window=0, tile_size=tile))
    shape = shape_at(inputs.content_pixels, size)
    free = available_bytes(torch.device("cpu"))
    tiles = run_tiles(inputs, settings)
    stamps: list[float] = []
    start = time.perf_counter()
    result = optimize(inputs, settings, callback=lambda p: stamps.append(time.perf_counter()))
    if out is not None:
        save_image(result.image, out)
    gaps = [b - a for a, b in zip([start, *stamps], stamps)]
    return {
        "shape": list(shape),
        "available_gib": None if free is None else round(free / 2**30, 1),
        "tile": tiles[-1],
        "first_s": round(gaps[0], 1),
        "later_s": [round(g, 1) for g in gaps[1:]],
        "peak_rss_gib": round(peak_rss_mib() / 1024, 2),
        "estimate_gib": round(run_bytes(settings.preset, [shape], tiles[-1:]) / 2**30, 2),
        "threads": torch.get_num_threads(),
    }


def overhead(size: int, tiles: list[int], repeats: int) -> dict[str, object]:
    """Median seconds of a whole evaluation and of tiled ones at ``size``, and the ratios."""
    from styletransfer.losses import Objective
    from styletransfer.pipeline.objective import build_objective, content_at, styles_at
    from styletransfer.tiling import split

    settings, inputs = _inputs(size)
    c = content_at(inputs, size, settings)
    s = styles_at(inputs, size, settings.preset, c)
    objectives: dict[str, Objective] = {"whole": build_objective(settings, c, s)}
    for t in tiles:
        objectives[str(t)] = build_objective(settings, c, s, tile=t)
    times: dict[str, list[float]] = {k: [] for k in objectives}
    for i in range(repeats + 1):
        for name, objective in objectives.items():
            x = c.clone().requires_grad_(True)
            begin = time.perf_counter()
            terms = objective.terms(x)
            torch.autograd.grad(terms["style"] + terms["content"] + terms["tv"], x)
            if i > 0:  # the first round warms up
                times[name].append(time.perf_counter() - begin)
    whole = statistics.median(times["whole"])
    layers = [*settings.preset.style_layers, *settings.preset.content_layers]
    return {
        "shape": list(c.shape[-2:]),
        "whole_s": round(whole, 2),
        "tiled": {
            t: {
                "tiles": len(split(c.shape[-2], c.shape[-1], t, layers)),
                "median_s": round(statistics.median(times[str(t)]), 2),
                "ratio": round(statistics.median(times[str(t)]) / whole, 2),
            }
            for t in tiles
        },
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("print")
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--out", help="save the image here")
    p.add_argument("--tile", type=int, help="tiles of this side (default: as the memory guard plans)")
    o = sub.add_parser("overhead")
    o.add_argument("--size", type=int, default=1024)
    o.add_argument("--tiles", type=int, nargs="+", default=[512, 768, 1024])
    o.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.command == "print":
        print(json.dumps(print_size(args.size, args.steps, args.out, args.tile)))
    else:
        print(json.dumps(overhead(args.size, args.tiles, args.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
