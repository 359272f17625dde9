"""How an evaluation's time grows with its scale: the cost model the dry run and the time budget share.

The dry run (:func:`~styletransfer.pipeline.estimate.plan`) measures one
evaluation at a small size and scales it to each scale of the run with
:func:`scaled_seconds` (or :func:`tiled_seconds` for a scale evaluated in
tiles).  A time budget is split over the scales in proportion to the same
model (:func:`evaluation_costs`), so the budget buys each scale about the same
share of its evaluations, and the dry run reports what the run will do.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..tiling.grid import split

#: How an evaluation's time grows with its pixels ``n``: ``t ~ n ** PIXEL_EXPONENT``.
#: Fitted to the median evaluation of real runs (``bench/benchmarks/estimate.py``; the runs in
#: docs/benchmarks.md, "The dry-run estimate"): the fixed costs of small images fade as the size grows.
PIXEL_EXPONENT = 0.85

#: A run's evaluation against the probe's bare one: the optimiser's bookkeeping,
#: the reports and the line search's extra work (measured in the same runs).
RUN_OVERHEAD = 1.2

#: Pixels (512x384) above which a CPU evaluation grows faster than its pixels.
LARGE_PIXELS = 512 * 384

#: ``t ~ n ** e`` above :data:`LARGE_PIXELS` on a CPU, by precision: there every
#: activation is a fresh ``mmap`` that the kernel zeroes page by page, and the
#: caches no longer hold a layer (docs/benchmarks.md, "bf16, the fp32 finish and
#: large images", and "Where the time goes above 512 px: page faults").
LARGE_PIXEL_EXPONENT = {"bf16": 1.1, "fp32": 1.15}

#: A tiled evaluation's time against an untiled one on the same pixels: pass 1's forward comes on
#: top of pass 2's forward and backward.  One tile covering a 1024x768 image took 1.16x the whole
#: evaluation (``bench/benchmarks/tiled.py overhead``, docs/benchmarks.md, "Tiled evaluation").
TILED_PASSES = 1.2


def scaled_seconds(probe: float, probe_pixels: int, pixels: int, precision: str, device: torch.device) -> float:
    """A run's evaluation at ``pixels`` from a bare one (``probe`` seconds) at ``probe_pixels``.

    ``RUN_OVERHEAD probe (min(n, L) / n_probe) ** PIXEL_EXPONENT (max(n, L) / L) ** e``
    with ``L =`` :data:`LARGE_PIXELS` and ``e`` from :data:`LARGE_PIXEL_EXPONENT`
    on a CPU (``PIXEL_EXPONENT`` elsewhere).
    """
    large: float = LARGE_PIXEL_EXPONENT.get(precision, PIXEL_EXPONENT) if device.type == "cpu" else PIXEL_EXPONENT
    small: float = (min(pixels, LARGE_PIXELS) / probe_pixels) ** PIXEL_EXPONENT
    grown: float = (max(pixels, LARGE_PIXELS) / LARGE_PIXELS) ** large
    return RUN_OVERHEAD * probe * small * grown


def tiled_seconds(
    probe: float,
    probe_pixels: int,
    height: int,
    width: int,
    tile: int,
    layers: list[str],
    precision: str,
    device: torch.device,
) -> float:
    """A tiled evaluation: ``TILED_PASSES`` times the sum over the tiles of :func:`scaled_seconds` at each tile's pixels."""
    return TILED_PASSES * sum(
        scaled_seconds(probe, probe_pixels, (t.y.stop - t.y.start) * (t.x.stop - t.x.start), precision, device)
        for t in split(height, width, tile, layers)
    )


def evaluation_costs(
    shapes: Sequence[tuple[int, int]],
    tiles: Sequence[int | None],
    layers: list[str],
    precision: str,
    device: torch.device,
) -> list[float]:
    """Each scale's evaluation time relative to the others': :func:`scaled_seconds` (whole) or
    :func:`tiled_seconds` (``tiles[i]`` a side) for a unit probe at :data:`LARGE_PIXELS`.

    Only the ratios mean anything: the machine's own speed cancels out.
    """
    return [
        scaled_seconds(1.0, LARGE_PIXELS, h * w, precision, device)
        if tile is None
        else tiled_seconds(1.0, LARGE_PIXELS, h, w, tile, layers, precision, device)
        for (h, w), tile in zip(shapes, tiles)
    ]
