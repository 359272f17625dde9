"""A run's settings: the preset with the caller's overrides, checked; the device and its precision; the scales.

:func:`resolve_settings` turns a preset and options into :class:`Settings`;
:func:`stage_sizes` and :func:`stage_steps` give a coarse-to-fine run's
scales and their evaluations.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..errors import OptionError
from ..options import BY_NAME, MAX_SIZE, check_options
from ..presets import DEFAULT_PRESET, Preset, get_preset
from ..tiling.grid import check_tile_size
from ..vgg_layers import LAYER_NAMES, check_layers, min_input_side


def resolve_device(name: str) -> torch.device:
    """``"auto"`` picks CUDA, then MPS, then the CPU; a named device must exist.

    Raises:
        OptionError: on ``device``, for an unknown name or a device this machine lacks.
    """
    check_options({"device": name})
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise OptionError("device", "{option} cuda: no CUDA GPU is available here; use {option} cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise OptionError("device", "{option} mps: Apple's MPS is not available here; use {option} cpu")
    return torch.device(name)


@dataclass(frozen=True)
class Settings:
    """A preset with the caller's overrides applied, plus the run's own choices.

    ``time_budget``: the seconds the run may take (``--time``), or ``None``: until its stopping rule or cap.
    """

    preset: Preset
    seed: int
    device: torch.device
    weights: str | None
    precision: str = "fp32"
    mask_mode: str = "simple"
    time_budget: float | None = None


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` is a CPU whose vector or matrix units multiply bf16 natively: AVX-512-BF16 or AMX.

    Decided by the instruction set (what PyTorch's CPU build reports), not by
    a probe: a timing probe at start-up is noisy on a loaded machine.  With
    either one oneDNN's bf16 convolutions beat fp32 ones (docs/benchmarks.md,
    "Speed, honestly").  Without them bf16 is converted around fp32 arithmetic
    and gains nothing.
    """
    if device.type != "cpu":
        return False
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(callable(f := getattr(torch.cpu, name, None)) and bool(f()) for name in probes)


#: ``precision="auto"`` picks bf16 from this long side up (see :func:`check_precision`).
AUTO_BF16_SIZE = 384


def check_precision(precision: str, device: torch.device, optimizer: str = "lbfgs", size: int = 512) -> str:
    """``precision`` if ``device`` can run it (see :data:`~styletransfer.options.PRECISIONS`).

    ``"auto"`` becomes ``"bf16"`` for an L-BFGS run of long side ``size >=
    AUTO_BF16_SIZE`` on a CPU with AVX-512-BF16 or AMX (:func:`native_bf16`), and ``"fp32"``
    otherwise.  Adam (the ``tutorial`` preset) stays fp32 so that it computes
    the seed's losses exactly.  Small images stay fp32 because there bf16
    gains least per evaluation and its rounding stalls L-BFGS soonest, even
    with the fp32 finish of :func:`optimize` (docs/benchmarks.md, "bf16, the
    fp32 finish and large images").

    Raises:
        OptionError: on ``precision``: tf32 off CUDA, bf16 on MPS.
    """
    check_options({"precision": precision})
    if precision == "auto":
        wanted = optimizer == "lbfgs" and size >= AUTO_BF16_SIZE
        return "bf16" if wanted and native_bf16(device) else "fp32"
    if precision == "tf32" and device.type != "cuda":
        raise OptionError(
            "precision", f"{{option}} tf32 is a CUDA GPU mode; on {device.type} use {{option}} fp32 or bf16"
        )
    if precision == "bf16" and device.type not in ("cuda", "cpu"):
        raise OptionError("precision", f"{{option}} bf16 is not available on {device.type}; use {{option}} fp32")
    return precision


def resolve_settings(
    preset: str | Preset | None = None,
    *,
    seed: int = 0,
    device: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    precision: str = "auto",
    mask_mode: str = "simple",
    time_budget: float | None = None,
    **overrides: Any,
) -> Settings:
    """Apply ``overrides`` (option names that are preset fields; ``None`` keeps the preset's value) and check them.

    ``time_budget`` is the ``time`` option (seconds, ``None``: no budget).

    Every value goes through the option table (:func:`~styletransfer.options.check_options`),
    then the checks that need the network's layer table.

    Raises:
        OptionError: naming the option at fault.
    """
    if not isinstance(preset, Preset):
        check_options({"preset": preset or DEFAULT_PRESET})
    base = preset if isinstance(preset, Preset) else get_preset(preset or DEFAULT_PRESET)
    table = {k: v for k, v in overrides.items() if k in BY_NAME and k != "init"}
    check_options({"mask_mode": mask_mode, "time": time_budget})
    checked = check_options({"seed": seed, **table})
    fields_only = {k: v for k, v in overrides.items() if k not in BY_NAME}  # preset fields without an option
    init = overrides.get("init")
    if init is not None and not isinstance(init, str):
        raise OptionError("init", f"{{option}} must be content, noise, style or an image path, not {init!r}")
    seed = checked.pop("seed")
    p = base.with_overrides(**checked, **fields_only, init=init)
    p = p.sized()
    if p.optimizer not in ("adam", "lbfgs", "instant"):
        raise OptionError("preset", f"unknown optimizer {p.optimizer!r}; use 'adam', 'lbfgs' or 'instant'")
    layers = check_layers(p.style_layers, "style_layers") + check_layers(p.content_layers, "content_layers")
    if not layers:
        raise OptionError("style_layers", "at least one content or style layer is needed")
    least = 1 if p.instant else min_input_side(layers)  # the feed-forward network takes any size
    if p.size < least:
        deepest = max(layers, key=LAYER_NAMES.index)
        raise OptionError(
            "size",
            f"{{option}} {p.size} is too small: the layers in use (down to {deepest}) need at least "
            f"{least} pixels on each side; use {{option}} {least} or more",
        )
    if p.size > MAX_SIZE:
        raise OptionError(
            "size",
            f"{{option}} {p.size} is too large: the limit is {MAX_SIZE} pixels (WebP's); use a smaller {{option}}",
        )
    for name in (
        "style_weight",
        "content_weight",
        "tv_weight",
        "lr",
        "style_scale",
    ):  # a preset object is not checked above
        value = getattr(p, name)
        if not math.isfinite(value) or value < 0:
            raise OptionError(name, f"{{option}} must be a finite number >= 0, not {value}")
    if p.style_layer_weights is not None and len(p.style_layer_weights) != len(p.style_layers):
        raise OptionError(
            "style_layer_weights",
            f"{{option}}: {len(p.style_layer_weights)} weights for {len(p.style_layers)} "
            f"style layers ({', '.join(p.style_layers)}); give one per layer",
        )
    if p.tile_size is not None and not p.instant:
        p = replace(p, tile_size=check_tile_size(p.tile_size, layers))
    where = resolve_device(device)
    return Settings(
        p,
        seed,
        where,
        None if weights is None else str(weights),
        check_precision(precision, where, p.optimizer, p.size),
        mask_mode,
        None if time_budget is None else float(time_budget),
    )


def configure_device(settings: Settings) -> None:
    """The CUDA switches of a run: cuDNN's autotuner on, TF32 convolutions and matmuls only under ``tf32``."""
    if settings.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        tf32 = settings.precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


def stage_sizes(preset: Preset) -> list[int]:
    """The long sides the run optimises at, coarse to fine, ending at ``preset.size``.

    One scale unless ``coarse_size`` is set and smaller than ``size``; then
    ``coarse_size``, its doublings below ``size``, and ``size``:
    e.g. 2048 -> [512, 1024, 2048], 1500 -> [512, 1024, 1500].
    """
    if preset.coarse_size is None or preset.size <= preset.coarse_size:
        return [preset.size]
    sizes = [preset.coarse_size]
    while sizes[-1] * 2 < preset.size:
        sizes.append(sizes[-1] * 2)
    return [*sizes, preset.size]


def stage_steps(preset: Preset) -> list[int]:
    """The evaluations (or Adam steps) at each of :func:`stage_sizes`: ``steps``, then ``refine_steps`` each."""
    return [preset.steps] + [preset.refine_steps] * (len(stage_sizes(preset)) - 1)


def total_steps(preset: Preset) -> int:
    """Steps of the whole run: ``steps`` at the first scale, ``refine_steps`` at each later one."""
    return sum(stage_steps(preset))
