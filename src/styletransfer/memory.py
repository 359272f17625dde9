"""The memory guard: refuse a run that will not fit, before it starts.

The estimate for one scale of ``H x W`` pixels (float32, the default layers)::

    bytes = BASE_BYTES + BYTES_PER_PIXEL * H * W          # VGG19 forward + backward
          + 2 * history * 3 * H * W * 4                    # L-BFGS curvature pairs
          + STYLE_BYTES_PER_PIXEL * style pixels           # the style targets' forward

``BASE_BYTES`` and ``BYTES_PER_PIXEL`` are a least-squares line through the
peak RSS measured by ``bench/benchmarks/highres.py`` on this project's CPU machine
(one scale, without the L-BFGS history; the points: docs/robustness.md,
"Memory guard"), that is 0.55 GiB
plus 2.45 KiB per pixel.  The style forward runs without gradients, so only
a few activations live at once: about 0.5 KiB per style pixel.  The run's
peak is the largest scale's estimate.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from .errors import InputError, OptionError
from .images import decoded_bytes
from .presets import Preset

BASE_BYTES = int(0.55 * 2**30)
BYTES_PER_PIXEL = int(2.45 * 2**10)
STYLE_BYTES_PER_PIXEL = 512
#: The instant preset's peak: its transformer's activations at the output's size, with no gradients.
#: Measured peak RSS over the process's start (PyTorch 2.13, CPU, channels-last): 254 B/pixel at
#: 1024x768, 193 at 2048x1536, 157 at 4096x3072; rounded up, with the weights and PyTorch's own.
INSTANT_BASE_BYTES = int(0.35 * 2**30)
INSTANT_BYTES_PER_PIXEL = 320


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
    return int(BASE_BYTES + BYTES_PER_PIXEL * pixels + 2 * history * 3 * pixels * 4 + STYLE_BYTES_PER_PIXEL * styles)


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

        bytes(B) = BASE_BYTES + B * (estimate_bytes(H, W) - BASE_BYTES)
    """
    free = available_bytes(device) if available is None else available
    if free is None:
        return 2**31
    each = estimate_bytes(preset, height, width) - BASE_BYTES
    return max(1, (free - BASE_BYTES) // each)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_memory(preset: Preset, height: int, width: int, device: torch.device, available: int | None = None) -> None:
    """Raise :class:`~styletransfer.errors.OptionError` on ``size``, naming the largest size when the run will not fit.

    Args:
        preset: the run's settings; ``preset.size`` is the long side of ``height x width``.
        height, width: the output's shape.
        device: where it runs.
        available: free bytes (default: :func:`available_bytes`).
    """
    free = available_bytes(device) if available is None else available
    if free is None:
        return
    need = estimate_bytes(preset, height, width)
    if need <= free:
        return
    ratio = min(height, width) / max(height, width)
    lo, hi = 16, preset.size
    while lo < hi:  # the largest long side whose estimate fits
        mid = (lo + hi + 1) // 2
        if estimate_bytes(preset, int(mid * ratio), mid) <= free:
            lo = mid
        else:
            hi = mid - 1
    raise OptionError(
        "size",
        f"{{option}} {preset.size} needs about {_gib(need)} of memory on {device.type}, but {_gib(free)} "
        f"are available; the largest size that fits is about {{option}} {lo}",
    )


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
