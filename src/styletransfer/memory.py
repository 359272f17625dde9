"""The memory guard: refuse a run that will not fit, before it starts.

The estimate for one scale of ``H x W`` pixels (float32, the default layers)::

    bytes = BASE_BYTES + BYTES_PER_PIXEL * H * W          # VGG19 forward + backward
          + 2 * history * 3 * H * W * 4                    # L-BFGS curvature pairs
          + STYLE_BYTES_PER_PIXEL * style pixels           # the style targets' forward
          + winograd_bytes(preset, H, W)                   # the cached Winograd kernels

``BASE_BYTES`` and ``BYTES_PER_PIXEL`` are a least-squares line through the
peak RSS measured by ``bench/benchmarks/highres.py`` on this project's CPU machine
(one scale, without the L-BFGS history; the points: docs/robustness.md,
"Memory guard"), that is 0.55 GiB
plus 2.45 KiB per pixel.  The style forward runs without gradients, so only
a few activations live at once: about 0.5 KiB per style pixel.  The run's
peak is the largest scale's estimate.

A run that does not fit whole is evaluated in tiles (:mod:`styletransfer.tiling`):
then one tile's forward and backward replaces the image's, and the
image-sized tensors are counted (:func:`tiled_estimate_bytes`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from .errors import InputError, OptionError
from .images import decoded_bytes
from .presets import Preset
from .tiling.grid import grid, smallest_tile
from .vgg import WINOGRAD_MIN_CHANNELS, WINOGRAD_TILE, uses_winograd
from .vgg_layers import LAYER_INDEX, LAYERS

BASE_BYTES = int(0.55 * 2**30)
BYTES_PER_PIXEL = int(2.45 * 2**10)
STYLE_BYTES_PER_PIXEL = 512
#: The instant preset's peak: its transformer's activations at the output's size, with no gradients.
#: Measured peak RSS over the process's start (PyTorch 2.13, CPU, channels-last): 254 B/pixel at
#: 1024x768, 193 at 2048x1536, 157 at 4096x3072; rounded up, with the weights and PyTorch's own.
INSTANT_BASE_BYTES = int(0.35 * 2**30)
INSTANT_BYTES_PER_PIXEL = 320


def winograd_bytes(preset: Preset, height: int, width: int) -> int:
    """The Winograd kernel transforms the network caches on the CPU for ``height x width`` inputs, an upper count.

    For each convolution up to the preset's deepest layer with at least
    ``min(WINOGRAD_MIN_CHANNELS.values())`` input channels and a map wide enough
    (:func:`~styletransfer.vgg.uses_winograd`), a forward and a backward
    transform of ``36 * C_in * C_out`` float32 values (F(4x4, 3x3): 36 for each
    3x3 kernel's 9): 0.45 GiB for the default's layers from a short side of 256 px on.  Counted on
    every device; not in :data:`BASE_BYTES`, which was fitted to runs that did
    not use them.
    """
    deepest = max(LAYER_INDEX[n] for n in _layers(preset))
    least = min(WINOGRAD_MIN_CHANNELS.values())
    values = (WINOGRAD_TILE + 2) ** 2  # per kernel: the transform of its a x a input tile
    return sum(
        2 * values * info.in_channels * info.out_channels * 4
        for info in LAYERS[: deepest + 1]
        if uses_winograd(info, least, min(height, width) // info.factor)
    )


def lbfgs_history(preset: Preset, numel: int) -> int:
    """L-BFGS pairs that fit ``history_mib``: each pair holds two float32 copies of the image."""
    fits = (preset.history_mib * 2**20) // (2 * 4 * numel)
    return max(1, min(preset.history, int(fits)))


def estimate_bytes(preset: Preset, height: int, width: int, style_pixels: int | None = None) -> int:
    """Peak memory of a run whose largest scale is ``height x width`` (see the module's formula).

    The instant preset (no gradients, no targets) needs ``INSTANT_BASE_BYTES + INSTANT_BYTES_PER_PIXEL * H * W``.
    """
    pixels = height * width
    if preset.instant:
        return INSTANT_BASE_BYTES + INSTANT_BYTES_PER_PIXEL * pixels
    history = lbfgs_history(preset, 3 * pixels) if preset.optimizer == "lbfgs" else 0
    styles = pixels * preset.style_scale**2 if style_pixels is None else style_pixels
    return int(
        BASE_BYTES
        + winograd_bytes(preset, height, width)
        + BYTES_PER_PIXEL * pixels
        + 2 * history * 3 * pixels * 4
        + STYLE_BYTES_PER_PIXEL * styles
    )


#: The tile sides the guard plans on its own, largest first: from :data:`AUTO_TILE_MAX` down to
#: :data:`AUTO_TILE_MIN` in steps of the pooling grid.  Below 512 the halos (96 pixels a side for the
#: seed's layers) cost more than the cores (docs/benchmarks.md, "Tiled evaluation").
AUTO_TILE_MAX = 1024
AUTO_TILE_MIN = 512

#: A tiled run keeps this many image-sized float32 tensors at the largest scale besides the
#: L-BFGS history: the image, its gradient, L-BFGS's direction, previous point and gradient and
#: best image, the content and style images, and the smoothed TV's temporaries alive during the
#: backward.  An upper count: with it the estimate in tiles of 1024 is 7.1 GiB at 4096x3072 and 14.5 GiB
#: at 8192x6144, where ``bench/benchmarks/tiled.py print`` measured peaks of 5.03 and 10.72 GiB
#: (docs/benchmarks.md, "Tiled evaluation").
TILED_IMAGE_COPIES = 16


def tiled_estimate_bytes(preset: Preset, height: int, width: int, tile: int, style_pixels: int | None = None) -> int:
    """Peak memory of a run whose largest scale is ``height x width``, evaluated in tiles of ``tile`` pixels a side.

    One tile's forward and backward, its style image's tiles alike, and what stays image-sized::

        bytes = BASE_BYTES + winograd_bytes(preset, tile rows, tile columns) + BYTES_PER_PIXEL * t + STYLE_BYTES_PER_PIXEL * min(style pixels, t)
              + (TILED_IMAGE_COPIES + 2 * history) * 3 * H * W * 4       # images, gradients, L-BFGS
              + sum_l C_l * (H / f_l) * (W / f_l) * 4                    # the content targets

    with ``t = min(tile, H) * min(tile, W)`` the largest tile's pixels.
    """
    pixels = height * width
    box = min(tile, height) * min(tile, width)
    history = lbfgs_history(preset, 3 * pixels) if preset.optimizer == "lbfgs" else 0
    styles = pixels * preset.style_scale**2 if style_pixels is None else style_pixels
    targets = sum(
        LAYERS[LAYER_INDEX[n]].out_channels * (height // f) * (width // f) * 4
        for n in preset.content_layers
        for f in [LAYERS[LAYER_INDEX[n]].factor]
    )
    images = (TILED_IMAGE_COPIES + 2 * history) * 3 * pixels * 4
    return int(
        BASE_BYTES
        + winograd_bytes(preset, min(tile, height), min(tile, width))
        + BYTES_PER_PIXEL * box
        + STYLE_BYTES_PER_PIXEL * min(styles, box)
        + images
        + targets
    )


def _layers(preset: Preset) -> list[str]:
    return [*preset.style_layers, *preset.content_layers]


def auto_tile(preset: Preset, height: int, width: int, available: int) -> int | None:
    """The largest tile side from :data:`AUTO_TILE_MAX` down to :data:`AUTO_TILE_MIN` whose run fits; ``None`` if none."""
    layers = _layers(preset)
    step = grid(layers)
    least = max(smallest_tile(layers), AUTO_TILE_MIN)
    for tile in range(AUTO_TILE_MAX // step * step, least - 1, -step):
        if tiled_estimate_bytes(preset, height, width, tile) <= available:
            return tile
    return None


def scale_tiles(preset: Preset, shapes: Sequence[tuple[int, int]], available: int | None) -> list[int | None]:
    """Each scale's tile side, or ``None`` where the scale runs whole; ``shapes`` coarse to fine.

    Every scale larger than one tile of ``tile_size`` is tiled.  Without it,
    nothing is tiled while the largest scale fits whole in ``available`` bytes
    (``None``: unknown, so nothing is); else the tile side is
    :func:`auto_tile`'s, as if given (:func:`~styletransfer.pipeline.tiles.with_planned_tiles`
    writes it into a job's settings, so its manifest repeats it).  The
    instant preset has nothing to tile.
    """
    if preset.instant:
        return [None] * len(shapes)
    tile = preset.tile_size
    if tile is None:
        height, width = shapes[-1]
        if available is None or estimate_bytes(preset, height, width) <= available:
            return [None] * len(shapes)
        tile = auto_tile(preset, height, width, available)
    return [None if tile is None or max(h, w) <= tile else tile for h, w in shapes]


def run_bytes(preset: Preset, shapes: Sequence[tuple[int, int]], tiles: Sequence[int | None]) -> int:
    """The run's peak: the largest of its scales' estimates, each tiled or whole as ``tiles`` says."""
    return max(
        estimate_bytes(preset, h, w) if t is None else tiled_estimate_bytes(preset, h, w, t)
        for (h, w), t in zip(shapes, tiles)
    )


def available_bytes(device: torch.device) -> int | None:
    """Memory free for a run on ``device``: CUDA's free memory, or the OS's ``MemAvailable``; ``None`` if unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return None


def batch_capacity(preset: Preset, height: int, width: int, device: torch.device, available: int | None = None) -> int:
    """How many runs of ``height x width`` fit in memory as one batch (at least 1; a large number when unknown).

    A batch of ``B`` shares the fixed part and needs the rest ``B`` times::

        fixed = BASE_BYTES + winograd_bytes(preset, H, W)
        bytes(B) = fixed + B * (estimate_bytes(H, W) - fixed)
    """
    free = available_bytes(device) if available is None else available
    if free is None:
        return 2**31
    fixed = BASE_BYTES + winograd_bytes(preset, height, width)
    each = estimate_bytes(preset, height, width) - fixed
    return max(1, (free - fixed) // each)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_memory(preset: Preset, height: int, width: int, device: torch.device, available: int | None = None) -> None:
    """Raise :class:`~styletransfer.errors.OptionError` on ``size``, naming the largest size when the run will not fit.

    A run that does not fit whole is planned in tiles (:func:`scale_tiles`,
    with ``tile_size`` or :func:`auto_tile`); it is refused only when even
    those do not fit.

    Args:
        preset: the run's settings; ``preset.size`` is the long side of ``height x width``.
        height, width: the output's shape.
        device: where it runs.
        available: free bytes (default: :func:`available_bytes`).
    """
    free = available_bytes(device) if available is None else available
    if free is None:
        return
    if least_bytes(preset, height, width, free) <= free:
        return
    need = least_bytes(preset, height, width, free)
    ratio = min(height, width) / max(height, width)
    lo, hi = 16, preset.size
    while lo < hi:  # the largest long side whose estimate fits
        mid = (lo + hi + 1) // 2
        if least_bytes(preset, int(mid * ratio), mid, free) <= free:
            lo = mid
        else:
            hi = mid - 1
    tiled = "" if preset.instant else f" (even in tiles of {preset.tile_size or AUTO_TILE_MIN} pixels)"
    raise OptionError(
        "size",
        f"{{option}} {preset.size} needs about {_gib(need)} of memory on {device.type}{tiled}, but {_gib(free)} "
        f"are available; the largest size that fits is about {{option}} {lo}",
    )


def least_bytes(preset: Preset, height: int, width: int, free: int) -> int:
    """The least a run whose largest scale is ``height x width`` needs: whole, or in the tiles it would get."""
    whole = estimate_bytes(preset, height, width)
    if preset.instant or (preset.tile_size is None and whole <= free):
        return whole
    if preset.tile_size is not None:
        return (
            whole
            if max(height, width) <= preset.tile_size
            else tiled_estimate_bytes(preset, height, width, preset.tile_size)
        )
    tile = auto_tile(preset, height, width, free)
    layers = _layers(preset)
    least = max(smallest_tile(layers), AUTO_TILE_MIN)
    return tiled_estimate_bytes(preset, height, width, least if tile is None else tile)


class DecodingTooLarge(InputError):
    """The input images, decoded, would not fit in the memory available (found from their headers)."""


def check_decoding(sources: Sequence[tuple[str | os.PathLike[str], int | None]], available: int | None = None) -> None:
    """Refuse, from the headers alone, input files whose decoding would not fit in the memory available.

    ``sources``: each file with the long side it is used at (``None``: whole).
    The decoded tensors are kept for the run, so they add up; the 8-bit image
    Pillow decodes first is freed after each file, so only the largest counts
    (:func:`~styletransfer.images.decoded_bytes` gives both).

    Raises:
        DecodingTooLarge: naming the largest file; ImageError: an unreadable header.
    """
    if not sources:
        return
    free = available_bytes(torch.device("cpu")) if available is None else available
    if free is None:
        return
    kept, largest, biggest = 0, 0, sources[0][0]
    for path, needed in sources:
        tensor, transient = decoded_bytes(path, needed)
        kept += tensor
        if transient > largest:
            largest, biggest = transient, path
    need = kept + largest
    if need > free:
        raise DecodingTooLarge(
            f"{biggest}: the input images need about {_gib(need)} of memory to decode, but {_gib(free)} are "
            "available; shrink the largest first"
        )
