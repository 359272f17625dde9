"""The pipeline: resolved settings and decoded inputs in, an optimised image out.

It knows nothing of files to write, progress bars or signals (that is
:mod:`styletransfer.runner` and the front ends).  Each input is decoded once
(:func:`decode_inputs`); each scale of a coarse-to-fine run resizes the
decoded tensors and computes its style targets once (:func:`build_objective`),
and the last scale's objective is kept to report the result's loss terms.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, cast

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .architecture import LAYER_INDEX, LAYER_NAMES, check_layers, min_input_side
from .color import luminance_image, match_color, match_luminance, preserve_luminance
from .driver import ScaleTask, Stage, planned_evaluations, run_scale, scale_deadlines
from .errors import Notice, OptionError
from .images import ImageLike, image_size, read_alpha, resize, scaled_shape, to_tensor, with_alpha
from .instant import mixed_vector, transform
from .losses import Objective, Weights, blend_weights
from .masks import (
    alpha_masks,
    check_count,
    check_frame,
    describe,
    face_mask,
    fit_mask,
    kmeans_masks,
    load_mask,
    parse_auto_masks,
    propagate,
)
from .memory import batch_capacity, check_decoding, check_memory, estimate_bytes, lbfgs_history
from .optimize import (
    Callback,
    Diverged,
    Interrupted,
    LowPassBoost,
    Reporter,
    StopCheck,
    run_lbfgs,
)
from .options import BY_NAME, INIT_CHOICES, MAX_SIZE, check_options
from .presets import DEFAULT_PRESET, TUTORIAL, Preset, get_preset
from .vgg import get_vgg

#: The longest style image side that ``style_scale`` may ask for, pixels.
MAX_STYLE_SIDE = 4096


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
    either one oneDNN's bf16 convolutions beat fp32 ones: at 512x384 an
    evaluation took 0.58-0.66 s against 1.26 s with AMX (Intel Sapphire
    Rapids class), and 1.15 s against 2.11 s with AVX-512-BF16 alone (AMD
    Zen 4), both on 2 cores (docs/benchmarks.md).  Without them bf16 is
    converted around fp32 arithmetic and gains nothing.
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
    gains least (2.1x per evaluation at 128 px, 3.3x at 512 px) and its
    rounding stalls L-BFGS soonest: at 128 px it stalls after about 300
    evaluations, and even with the fp32 finish of :func:`optimise` one pair
    of the varied set ended 0.2% above the tutorial's loss (docs/benchmarks.md).

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


def _describe(image: ImageLike, role: str) -> str:
    """How an error message names an input: its path, or its role."""
    return str(image) if isinstance(image, (str, os.PathLike)) else f"the {role} image"


def _smallest_size(height: int, width: int, least: int) -> int:
    """The smallest ``size`` at which both sides of :func:`scaled_shape` reach ``least``."""
    size = math.ceil(least * max(height, width) / min(height, width))
    while size <= MAX_SIZE and min(scaled_shape(height, width, size)) < least:
        size += 1
    return size


def check_shape(image: ImageLike, t: Tensor, size: int, layers: Sequence[str], role: str, option: str = "size") -> None:
    """Refuse an image that, loaded at long side ``size``, is too thin for ``layers``.

    VGG19's pools need :func:`~styletransfer.architecture.min_input_side`
    pixels on *each* side; a long thin image scaled to ``size`` on its long
    side can fall short on the other.

    Args:
        image: the input as given (for the message), ``t`` its decoded tensor.
        option: the option that sets ``size`` (``size`` or ``style_scale``).

    Raises:
        OptionError: on ``option``, naming the image, its shape and the size that would work.
    """
    h, w = t.shape[2], t.shape[3]
    shape = scaled_shape(h, w, size)
    least = min_input_side(layers)
    if min(shape) < least:
        needed = _smallest_size(h, w, least)
        advice = (
            f"use {{option}} {needed} or more, or crop it"
            if needed <= MAX_SIZE
            else "crop it to a less extreme aspect ratio"
        )
        if isinstance(image, (str, os.PathLike)):  # its own size, though it may have been decoded smaller
            w, h = image_size(image)
        raise OptionError(
            option,
            f"{_describe(image, role)}: at {{option}} {size} this {w}x{h} image becomes {shape[1]}x{shape[0]} "
            f"pixels, but VGG19's layers in use need at least {least} on each side; {advice}",
        )


def load_checked(
    image: ImageLike, size: int, layers: Sequence[str], role: str, decoded: Tensor | None = None
) -> Tensor:
    """The seed's ``load_img`` at ``size``, refusing a shape ``layers`` cannot take (see :func:`check_shape`).

    ``decoded`` is ``image`` already decoded (:func:`~styletransfer.images.to_tensor`), to decode it once.
    """
    t = to_tensor(image) if decoded is None else decoded
    check_shape(image, t, size, layers, role)
    return resize(t, scaled_shape(t.shape[2], t.shape[3], size))


@dataclass
class Inputs:
    """A run's inputs, decoded once.

    Attributes:
        content, styles: the sources as given (paths or in-memory images), for messages and manifests.
        content_pixels: the content as a ``(1, 3, H, W)`` tensor in [0, 1], full size.
        alpha: the content's alpha channel, or ``None``.
        style_pixels: each style image, full size.
        init: ``"content"``, ``"noise"``, ``"style"``, or the decoded starting image.
        masks: the regions in the content's frame, ``(1, 1, h, w)`` each at its own size: one per style,
            or one for the blended style (protected faces alone), or ``None``.
        style_masks: per style, ``None`` or its region in the style's frame; ``None`` for none at all.
        fine_style: the decoded ``fine_style`` image until :func:`mix_scales` has made the styles from it.
    """

    content: ImageLike
    styles: list[ImageLike]
    content_pixels: Tensor
    alpha: np.ndarray | None
    style_pixels: list[Tensor]
    init: str | Tensor
    masks: list[Tensor] | None = None
    style_masks: list[Tensor | None] | None = None
    fine_style: Tensor | None = None


def styles_list(style: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    """One style or several: a list or tuple of images is several styles."""
    if isinstance(style, (list, tuple)):
        return list(style)
    return [cast(ImageLike, style)]


def _shape_at(image: Tensor, size: int) -> tuple[int, int]:
    """:func:`~styletransfer.images.scaled_shape` of a ``(1, 3, H, W)`` tensor at long side ``size``."""
    return scaled_shape(image.shape[2], image.shape[3], size)


class FacesProtected(Notice):
    """How many faces ``protect_faces`` found (their content is kept)."""


def decode_inputs(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    init: str | ImageLike = "content",
    *,
    masks: Sequence[ImageLike] | None = None,
    style_masks: Sequence[ImageLike] | None = None,
    auto_masks: str | None = None,
    protect_faces: bool = False,
    fine_style: ImageLike | None = None,
    preset: Preset | None = None,
) -> Inputs:
    """Decode the content (with its alpha), every style, a starting image and the masks, each once.

    ``preset``: the run's, when known; image files four or more times larger
    than the run uses them (the content and a starting image at ``size``, the
    styles at ``style_scale * size``) are then decoded smaller
    (:func:`~styletransfer.images.reduce_factor`).  Masks are decoded whole.

    ``masks`` (one per style, in the content's frame) or ``auto_masks``
    (``"alpha"`` or ``"kmeans:K"``, see :mod:`styletransfer.masks`) give the
    regions; ``protect_faces`` takes the faces OpenCV finds out of every region.

    Raises:
        ImageError: for an input that is not a readable image (a mask included), or a mask of
            another aspect ratio than its frame.
        OptionError: for a mask count that does not match the styles, or impossible automatic masks.
    """
    styles = styles_list(style)
    if not styles:
        raise OptionError("style_blend", "at least one style image is needed")
    size, style_side = needed_sides(preset)
    pixels = to_tensor(content, size)
    alpha = read_alpha(content)
    style_pixels = [to_tensor(s, style_side) for s in styles]
    start: str | Tensor = init if isinstance(init, str) and init in INIT_CHOICES else to_tensor(init, size)
    inputs = Inputs(content, styles, pixels, alpha, style_pixels, start)
    inputs.fine_style = None if fine_style is None else to_tensor(fine_style, style_side)
    _decode_masks(inputs, masks, style_masks, auto_masks, protect_faces)
    return inputs


def needed_sides(preset: Preset | None) -> tuple[int | None, int | None]:
    """The long sides a run decodes its images for: the content's (``size``) and the styles' (``style_scale * size``).

    An image four or more times larger than its side is decoded smaller
    (:func:`~styletransfer.images.reduce_factor`).  ``None`` for the seed's
    own preset (``tutorial``, at any size): it decodes every image whole, as
    the seed does, so that its pixels stay the seed's.
    """
    if preset is None or preset.name == TUTORIAL.name:
        return None, None
    return preset.size, max(1, round(preset.style_scale * preset.size))


def _decode_masks(
    inputs: Inputs,
    masks: Sequence[ImageLike] | None,
    style_masks: Sequence[ImageLike] | None,
    auto_masks: str | None,
    protect_faces: bool,
) -> None:
    """Fill ``inputs.masks`` and ``inputs.style_masks`` (see :func:`decode_inputs`)."""
    n = len(inputs.styles)
    frame = (inputs.content_pixels.shape[2], inputs.content_pixels.shape[3])
    if masks is not None and auto_masks is not None:
        raise OptionError("auto_masks", "{option} makes the masks: give it or masks, not both")
    if masks is not None:
        check_count(len(masks), n, "masks")
        inputs.masks = []
        for i, m in enumerate(masks, start=1):
            t = load_mask(m)
            check_frame(t, frame, describe(m, f"mask {i}"), "the content image")
            inputs.masks.append(t)
    elif auto_masks is not None:
        kind, k = parse_auto_masks(auto_masks)
        if kind == "alpha":
            inputs.masks = alpha_masks(inputs.alpha, n)
        else:
            if k != n:
                raise OptionError(
                    "auto_masks",
                    f"{{option}} {auto_masks}: {k} regions for {n} style images; give one style per region",
                )
            inputs.masks = kmeans_masks(inputs.content_pixels, k)
    if style_masks is not None:
        check_count(len(style_masks), n, "style_masks")
        inputs.style_masks = []
        for i, (m, s) in enumerate(zip(style_masks, inputs.style_pixels), start=1):
            t = load_mask(m)
            check_frame(t, (s.shape[2], s.shape[3]), describe(m, f"style mask {i}"), f"style image {i}")
            inputs.style_masks.append(t)
    if protect_faces:
        faces, count = face_mask(inputs.content_pixels)
        warnings.warn(
            FacesProtected(
                f"protect_faces: {count} face{'s' if count != 1 else ''} found"
                + (", kept as in the content" if count else "; nothing is protected")
            ),
            stacklevel=3,
        )
        if count:
            keep = 1.0 - faces
            regions = inputs.masks if inputs.masks is not None else [torch.ones_like(keep)]
            inputs.masks = [fit_mask(m, frame) * keep for m in regions]


#: Style targets kept for reuse, by :func:`_style_key`: a batch or a video stylises many contents with the same
#: styles at the same size, and their Gram matrices are computed once per process (a few MiB each).
_STYLE_TARGETS: dict[str, dict[str, Tensor]] = {}
_STYLE_TARGETS_KEPT = 8


def _style_key(settings: Settings, styles: Sequence[Tensor]) -> str:
    """What the style targets depend on: the style pixels, the layers, blend, pooling, weights file and device."""
    p = settings.preset
    digest = hashlib.sha256(
        repr(
            (p.style_layers, p.style_blend, p.pooling, settings.weights, str(settings.device), settings.precision)
        ).encode()
    )
    for s in styles:
        digest.update(repr(tuple(s.shape)).encode())
        digest.update(s.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def build_objective(
    settings: Settings,
    content: Tensor,
    styles: Tensor | Sequence[Tensor],
    masks: Sequence[Tensor] | None = None,
    style_masks: Sequence[Tensor | None] | None = None,
) -> Objective:
    """The run's objective (its weights, layers, blend, pooling and masks) for ``content`` and ``styles`` at their size.

    Computes the content targets (one VGG forward, no gradient); the style
    targets are computed once per process for the same style pixels and
    settings, and reused (the same numbers: the same forward of the same pixels).
    Regional (masked) targets depend on the masks and are not reused.
    """
    p = settings.preset
    styles = [styles] if isinstance(styles, Tensor) else list(styles)
    vgg = get_vgg(settings.weights, settings.device)
    regional = masks is not None or style_masks is not None
    key = _style_key(settings, styles)
    objective = Objective(
        vgg,
        content.to(settings.device),
        [s.to(settings.device) for s in styles],
        weights=Weights(p.style_weight, p.content_weight, p.tv_weight),
        content_layers=p.content_layers,
        style_layers=p.style_layers,
        style_blend=p.style_blend,
        style_layer_weights=p.style_layer_weights,
        pooling=p.pooling,
        precision=settings.precision,
        masks=masks,
        style_masks=style_masks,
        mask_mode=settings.mask_mode,
        style_targets=None if regional else _STYLE_TARGETS.get(key),
    )
    if not regional and key not in _STYLE_TARGETS:
        while len(_STYLE_TARGETS) >= _STYLE_TARGETS_KEPT:
            del _STYLE_TARGETS[next(iter(_STYLE_TARGETS))]
        _STYLE_TARGETS[key] = objective.style_targets
    return objective


def styles_at(inputs: Inputs, size: int, preset: Preset, content: Tensor) -> list[Tensor]:
    """The style images at ``style_scale * size`` (long side), recoloured for ``histogram`` mode."""
    long_side = round(preset.style_scale * size)
    least = min_input_side(preset.style_layers)
    if long_side < least:
        raise OptionError(
            "style_scale",
            f"{{option}} {preset.style_scale} makes the style image {long_side} px; the style layers need {least} at least",
        )
    if long_side > MAX_STYLE_SIDE:
        raise OptionError(
            "style_scale",
            f"{{option}} {preset.style_scale} makes the style image {long_side} px; the limit is {MAX_STYLE_SIDE}",
        )
    loaded = [
        load_checked(src, long_side, preset.style_layers, "style", decoded=t).to(content.device)
        for src, t in zip(inputs.styles, inputs.style_pixels)
    ]
    if preset.preserve_colors == "histogram":
        loaded = [match_color(s, content).clamp(0.0, 1.0) for s in loaded]
    elif preset.preserve_colors == "luminance-only":
        loaded = [match_luminance(s, content) for s in loaded]
    return loaded


def content_at(inputs: Inputs, size: int, settings: Settings) -> Tensor:
    """The content at long side ``size`` on the run's device; its luminance image in ``luminance-only`` mode."""
    p = settings.preset
    c = load_checked(
        inputs.content, size, p.style_layers + p.content_layers, "content", decoded=inputs.content_pixels
    ).to(settings.device)
    return luminance_image(c) if p.preserve_colors == "luminance-only" else c


def objective_at(inputs: Inputs, settings: Settings, size: int) -> tuple[Objective, Tensor, list[Tensor]]:
    """One scale's objective (targets computed once), its content and its styles; the masks resized to them."""
    c = content_at(inputs, size, settings)
    s = styles_at(inputs, size, settings.preset, c)
    shape = (c.shape[-2], c.shape[-1])
    masks = None if inputs.masks is None else [fit_mask(m, shape) for m in inputs.masks]
    style_masks = (
        None
        if inputs.style_masks is None
        else [None if r is None else fit_mask(r, (t.shape[-2], t.shape[-1])) for r, t in zip(inputs.style_masks, s)]
    )
    regions: dict[str, Any] = (
        {} if masks is None and style_masks is None else {"masks": masks, "style_masks": style_masks}
    )
    return build_objective(settings, c, s, **regions), c, s


def final_terms(
    image: ImageLike, content: ImageLike, style: ImageLike | Sequence[ImageLike], settings: Settings
) -> dict[str, float]:
    """The run's own objective at its final size (its last scale's targets) for ``image``: each term and ``total``."""
    objective, c, _ = objective_at(
        decode_inputs(content, style, settings.preset.init, preset=settings.preset), settings, settings.preset.size
    )
    return evaluate(objective, image, c)


def layer_masks(inputs: Inputs, settings: Settings) -> tuple[list[dict[str, Tensor]], list[dict[str, Tensor]]]:
    """What each style layer sees of each content mask and each style mask, at the run's last scale."""
    p = settings.preset
    c = content_at(inputs, p.size, settings)
    shape = (c.shape[-2], c.shape[-1])
    content_side = [propagate(fit_mask(m, shape), p.style_layers, settings.mask_mode) for m in inputs.masks or []]
    style_side = []
    if inputs.style_masks is not None:
        for r, t in zip(inputs.style_masks, styles_at(inputs, p.size, p, c)):
            if r is not None:
                style_side.append(
                    propagate(fit_mask(r, (t.shape[-2], t.shape[-1])), p.style_layers, settings.mask_mode)
                )
    return content_side, style_side


def initial_image(settings: Settings, content: Tensor, style: Tensor, init: str | Tensor | None = None) -> Tensor:
    """The run's first image at ``content``'s shape, from ``init`` (default: the preset's).

    ``"content"`` (the seed's), ``"noise"`` (uniform in [0, 1], from the run's
    seed), ``"style"`` (the first style image, resized), or an image (resized).
    """
    init = settings.preset.init if init is None else init
    seed = settings.seed
    if isinstance(init, str) and init == "content":
        return content.clone()
    if isinstance(init, str) and init == "noise":
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(content.shape, generator=gen).to(content.device)
    source = (
        style if isinstance(init, str) and init == "style" else init if isinstance(init, Tensor) else to_tensor(init)
    )
    return resize(source, (content.shape[-2], content.shape[-1])).to(content.device)


def check_before_decoding(
    content: ImageLike,
    styles: Sequence[ImageLike],
    init: str | ImageLike,
    settings: Settings,
    *,
    masks: Sequence[ImageLike] | None = None,
    style_masks: Sequence[ImageLike] | None = None,
    fine_style: ImageLike | None = None,
) -> None:
    """The memory checks that the image files' headers allow, before any pixel is decoded.

    The run itself (:func:`~styletransfer.memory.check_memory`, at the
    content's header size) and the decoded inputs together
    (:func:`~styletransfer.memory.check_decoding`).  In-memory images are
    already decoded and are not counted.

    Raises:
        OptionError: the run will not fit (on ``size``). DecodingTooLarge, ImageError: the inputs.
    """
    p = settings.preset
    size, style_side = needed_sides(p)
    files = [(content, size), *((s, style_side) for s in styles), (fine_style, style_side)]
    if not (isinstance(init, str) and init in INIT_CHOICES):
        files.append((init, size))
    files += [(m, None) for m in (*(masks or ()), *(style_masks or ()))]
    paths = [(f, n) for f, n in files if isinstance(f, (str, os.PathLike))]
    if isinstance(content, (str, os.PathLike)):
        width, height = image_size(content)
        check_memory(p, *scaled_shape(height, width, p.size), settings.device)
    check_decoding(paths)


def check_inputs(inputs: Inputs, settings: Settings) -> None:
    """The checks that need the decoded inputs, before any optimisation.

    Raises:
        OptionError: a blend that does not match the styles, a run that will not fit in memory.
        OptionError: also for a content image too thin for the layers at the first scale.
    """
    p = settings.preset
    blend_weights(p.style_blend, len(inputs.styles))
    first = stage_sizes(p)[0]
    if not p.instant:  # VGG19's layers need a least size; the feed-forward network pads what it gets
        check_shape(inputs.content, inputs.content_pixels, first, p.style_layers + p.content_layers, "content")
    h, w = inputs.content_pixels.shape[2], inputs.content_pixels.shape[3]
    check_memory(p, *scaled_shape(h, w, p.size), settings.device)


@dataclass
class Optimised:
    """What :func:`optimise` gives back.

    Attributes:
        image: the optimised ``(1, 3, H, W)`` image on the CPU (before :func:`finish_image`).
        objective: the last scale's objective, to report the result's loss terms without new targets;
            ``None`` for the instant preset, which has no objective (and no loss terms to report).
        content: the content at the last scale (its shape is the output's); ``None`` with ``objective``.
    """

    image: Tensor
    objective: Objective | None
    content: Tensor | None


def optimise(
    inputs: Inputs,
    settings: Settings,
    *,
    callback: Callback | None = None,
    should_stop: StopCheck | None = None,
    on_scale: Callable[[int, Tensor], None] | None = None,
    wrap_objective: Callable[[Objective, Tensor], Objective] | None = None,
    started: float | None = None,
) -> Optimised:
    """Optimise the image at each scale of :func:`stage_sizes`, coarse to fine.

    Each scale resizes the decoded content and styles to its size, computes its
    targets once, and starts from the previous scale's result upsampled
    bilinearly; :func:`~styletransfer.driver.run_scale` runs it (bf16 and its
    fp32 finish, the stopping rule, the time budget).  ``on_scale(size, image)``
    is called as each scale ends.  ``wrap_objective(objective, content)``, when
    given, returns the objective each scale optimises instead (a front end's
    extra term, e.g. video's temporal loss); the result's ``objective`` is
    still the unwrapped one.

    With ``settings.time_budget`` the run ends ``time_budget`` seconds after
    ``started`` (a ``time.perf_counter()`` value; default: now) with the best
    image so far, the budget split over the scales by
    :func:`~styletransfer.driver.scale_deadlines`; a scale whose time is up
    before it starts keeps the upsampled image.

    bf16's rounding (relative 2^-8 in every activation) puts a floor under the
    loss the optimiser can see: at 128 px on a dark pair the bf16 run stalls
    at 1.316e7 after 300 evaluations while fp32 goes on down to 1.231e7
    (docs/benchmarks.md), hence the fp32 finish.

    Raises:
        styletransfer.optimize.Interrupted: on Ctrl-C or when ``should_stop()``
            returns True (checked before every evaluation), with the best image so far.
        styletransfer.optimize.Diverged: when the loss stays NaN or infinite.
    """
    p = settings.preset
    check_inputs(inputs, settings)
    configure_device(settings)
    if p.instant:
        return Optimised(instant_image(inputs, settings), None, None)
    begin = time.perf_counter() if started is None else started
    if inputs.fine_style is not None:
        mix_scales(inputs, settings, should_stop=should_stop)
    report = Reporter(total_steps(p), callback, should_stop=should_stop)
    shapes = [_shape_at(inputs.content_pixels, size) for size in stage_sizes(p)]
    deadlines = budget_deadlines(settings, begin, shapes)
    x: Tensor | None = None
    stage: Stage | None = None
    for scale, (size, steps, deadline) in enumerate(zip(stage_sizes(p), stage_steps(p), deadlines)):

        def build(precision: str, size: int = size) -> Stage:
            objective, c, _ = objective_at(inputs, replace(settings, precision=precision), size)
            return Stage(objective, objective if wrap_objective is None else wrap_objective(objective, c), c)

        if x is not None and deadline is not None and time.perf_counter() >= deadline:
            x = resize(x, shapes[scale]).clamp(0.0, 1.0)  # out of time: the upsampled image
            continue
        x0 = _start_image(inputs, settings, x, shapes[scale], size)
        (outcome,), (stage,) = run_scale(
            [ScaleTask(build, x0, report)],
            p,
            settings.precision,
            steps,
            history=lbfgs_history(p, x0.numel()),
            precondition=lowpass(p, x0) if scale == 0 else None,
            deadline=deadline,
        )
        if not isinstance(outcome, Tensor):
            raise outcome
        x = outcome
        if on_scale is not None:
            on_scale(size, x.detach().cpu())
    assert x is not None
    if stage is None or stage.content.shape[-2:] != x.shape[-2:]:  # the last scale was skipped
        objective, c, _ = objective_at(inputs, settings, p.size)
        stage = Stage(objective, objective, c)
    return Optimised(x.cpu(), stage.objective, stage.content)


def instant_image(inputs: Inputs, settings: Settings) -> Tensor:
    """The instant preset's picture: one pass of the feed-forward network at the output's size, returned on the CPU.

    The content is resized to ``size`` (the seed's resize); ``histogram``
    colours recolour each style to the content before its style vector is
    taken; ``style_blend`` and ``strength`` mix the vectors
    (:func:`~styletransfer.instant.model.mixed_vector`).
    """
    p = settings.preset
    content = resize(inputs.content_pixels, _shape_at(inputs.content_pixels, p.size))
    styles = inputs.style_pixels
    if p.preserve_colors == "histogram":
        styles = [match_color(s, content).clamp(0.0, 1.0) for s in styles]
    weights = blend_weights(p.style_blend, len(styles))
    vector = mixed_vector(content, styles, weights, p.strength, settings.device)
    return transform(content, vector, settings.device, settings.precision).cpu()


def budget_deadlines(settings: Settings, begin: float, shapes: Sequence[tuple[int, int]]) -> list[float | None]:
    """Each scale's deadline under ``settings.time_budget`` seconds counted from ``begin``; ``None`` each without one.

    The network is loaded first (once per process), and what is left of the
    budget then is split over the scales by their cost
    (:func:`~styletransfer.driver.scale_deadlines`): loading the weights, a
    second or two, does not eat the first scale's share.
    """
    if settings.time_budget is None:
        return [None] * len(shapes)
    get_vgg(settings.weights, settings.device)
    now = time.perf_counter()
    left = max(0.0, begin + settings.time_budget - now)
    return scale_deadlines(now, left, shapes, stage_steps(settings.preset))


def _start_image(inputs: Inputs, settings: Settings, x: Tensor | None, shape: tuple[int, int], size: int) -> Tensor:
    """A scale's first image: the preset's ``init`` at the first scale, else the previous result upsampled."""
    if x is None:
        c = content_at(inputs, size, settings)
        s = styles_at(inputs, size, settings.preset, inputs.content_pixels)
        return initial_image(settings, c, s[0], inputs.init).to(settings.device)
    return resize(x, shape).clamp(0.0, 1.0).to(settings.device)


def lowpass(preset: Preset, image: Tensor) -> LowPassBoost | None:
    """The preset's L-BFGS preconditioner for ``image``'s size (sigmas scale with its long side), or ``None``.

    Used at the first scale only: a coarse-to-fine run's later scales start
    from the upsampled result, whose broad colours are settled, and add fine
    detail, where the boost is 1 (and its FFTs would cost memory at 2048 px).
    """
    if preset.lowpass_gain <= 0 or not preset.lowpass_sigmas:
        return None
    side = max(image.shape[-2], image.shape[-1])
    return LowPassBoost(preset.lowpass_gain, [f * side for f in preset.lowpass_sigmas])


def can_batch(inputs: Inputs, settings: Settings) -> bool:
    """Whether a run can share a batch (:func:`optimise_batch`) with others of the same settings and shape.

    It can when it uses L-BFGS and its objective differs from theirs in the
    content alone: no regions (``masks``, ``style_masks``), no ``fine_style``,
    and no colour mode that changes the style images per content
    (``histogram``, ``luminance-only``).
    """
    p = settings.preset
    return (
        p.optimizer == "lbfgs"
        and inputs.masks is None
        and inputs.style_masks is None
        and inputs.fine_style is None
        and p.preserve_colors not in ("histogram", "luminance-only")
    )


def batch_key(inputs: Inputs, settings: Settings) -> str | None:
    """Runs with equal keys can share a batch: a hash of the settings, the style pixels and each scale's shape.

    ``None`` for a run that cannot (:func:`can_batch`).
    """
    if not can_batch(inputs, settings):
        return None
    shapes = [_shape_at(inputs.content_pixels, size) for size in stage_sizes(settings.preset)]
    digest = hashlib.sha256(repr((settings, shapes)).encode())
    for t in inputs.style_pixels:
        digest.update(repr(tuple(t.shape)).encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def batch_limit(inputs: Inputs, settings: Settings) -> int:
    """The most runs like this one that fit in memory as one batch (:func:`~styletransfer.memory.batch_capacity`)."""
    h, w = _shape_at(inputs.content_pixels, settings.preset.size)
    return batch_capacity(settings.preset, h, w, settings.device)


def optimise_batch(
    inputs: Sequence[Inputs],
    settings: Settings,
    *,
    callbacks: Sequence[Callback | None] | None = None,
    should_stop: StopCheck | None = None,
    on_scale: Sequence[Callable[[int, Tensor], None] | None] | None = None,
    started: float | None = None,
) -> list[Optimised | Interrupted | Diverged]:
    """:func:`optimise` for several contents at once: one batched forward and backward per evaluation.

    The runs must share a :func:`batch_key` (the settings, the styles, each
    scale's shape).  At each scale of :func:`stage_sizes`, every run still
    going builds its objective as :func:`optimise` does, and
    :func:`~styletransfer.optimize.run_lbfgs_batch` optimises them together,
    each image with its own L-BFGS state, line search, cap and stopping rule
    (and under bf16, as in :func:`optimise`, its fp32 finish).
    Image ``b``'s result is what :func:`optimise` gives it alone, up to the
    rounding of batched convolutions.  ``callbacks[b]`` and ``on_scale[b]``
    hear run ``b`` only.  A time budget (``settings.time_budget`` from
    ``started``) is every run's own, as in :func:`optimise`: the runs start
    together, so they share each scale's deadline and all end by
    ``started + time_budget``.

    Returns:
        Per run: its :class:`Optimised`, or the :class:`Interrupted` (a stop was
        asked for) or :class:`Diverged` that ended it (a diverged run leaves
        the batch; the others go on).

    Raises:
        OptionError: for runs that cannot share a batch (different keys, or :func:`can_batch` false).
    """
    p = settings.preset
    keys = {batch_key(i, settings) for i in inputs}
    if None in keys or len(keys) > 1:
        raise OptionError(
            "size",
            "a batch needs L-BFGS runs of one shape with the same styles and no regions, fine_style, "
            "histogram or luminance-only colours",
        )
    for i in inputs:
        check_inputs(i, settings)
    configure_device(settings)
    begin = time.perf_counter() if started is None else started
    n = len(inputs)
    callbacks = [None] * n if callbacks is None else list(callbacks)
    hooks = [None] * n if on_scale is None else list(on_scale)
    reports = [Reporter(total_steps(p), cb, should_stop=should_stop) for cb in callbacks]
    results: list[Optimised | Interrupted | Diverged | None] = [None] * n
    xs: list[Tensor | None] = [None] * n
    shapes = [_shape_at(inputs[0].content_pixels, size) for size in stage_sizes(p)]
    deadlines = budget_deadlines(settings, begin, shapes)
    for scale, (size, steps, deadline) in enumerate(zip(stage_sizes(p), stage_steps(p), deadlines)):
        going = [b for b in range(n) if not isinstance(results[b], (Interrupted, Diverged))]
        if not going:
            break
        if scale > 0 and deadline is not None and time.perf_counter() >= deadline:
            for b in going:  # out of time: the upsampled image, scored at the final size
                xs[b] = resize(cast(Tensor, xs[b]), shapes[scale]).clamp(0.0, 1.0)
                objective, c, _ = objective_at(inputs[b], settings, p.size)
                results[b] = Optimised(cast(Tensor, xs[b]).cpu(), objective, c)
            continue

        def build(precision: str, b: int, size: int = size) -> Stage:
            objective, c, _ = objective_at(inputs[b], replace(settings, precision=precision), size)
            return Stage(objective, objective, c)

        tasks = [
            ScaleTask(partial(build, b=b), _start_image(inputs[b], settings, xs[b], shapes[scale], size), reports[b])
            for b in going
        ]
        outcomes, stages = run_scale(
            tasks,
            p,
            settings.precision,
            steps,
            history=lbfgs_history(p, tasks[0].start.numel()),
            precondition=lowpass(p, tasks[0].start) if scale == 0 else None,
            deadline=deadline,
        )
        for b, stage, out in zip(going, stages, outcomes):
            if isinstance(out, (Interrupted, Diverged)):
                results[b] = out
                continue
            xs[b] = out
            results[b] = Optimised(out.cpu(), stage.objective, stage.content)
            hook = hooks[b]
            if hook is not None:
                hook(size, out.detach().cpu())
    return [cast(Optimised | Interrupted | Diverged, r) for r in results]


def stylize_batch(
    contents: Sequence[ImageLike],
    style: ImageLike | Sequence[ImageLike],
    settings: Settings,
    *,
    should_stop: StopCheck | None = None,
) -> list[Tensor]:
    """Decode the inputs and :func:`optimise_batch`: one ``(1, 3, H, W)`` CPU image per content, in order.

    :func:`stylize_tensor` for several contents of one shape at the run's
    sizes (see :func:`batch_key`), in one batch.  For each run's own outcome
    (a stop or a divergence does not end the others) use :func:`optimise_batch`.

    Raises:
        Interrupted, Diverged: the first content's, in order, whose run ended so.
    """
    inputs = [decode_inputs(c, style, settings.preset.init, preset=settings.preset) for c in contents]
    images = []
    for out in optimise_batch(inputs, settings, should_stop=should_stop):
        if isinstance(out, (Interrupted, Diverged)):
            raise out
        images.append(out.image)
    return images


#: ``fine_style`` takes the layers up to this one from its image, the deeper ones from the style (Gatys 2017).
FINE_LAYERS_END = "block2_conv1"

#: L-BFGS evaluations that make each scale-mixed style image.
MIX_EVALUATIONS = 100


def mixed_style(
    settings: Settings,
    style: Tensor,
    fine: Tensor,
    evaluations: int = MIX_EVALUATIONS,
    should_stop: StopCheck | None = None,
) -> Tensor:
    """Gatys et al. 2017's scale mixing: an image with ``fine``'s texture and ``style``'s coarse structure.

    Starting from ``style``, L-BFGS matches the Gram matrices of ``fine`` (at
    ``style``'s long side) at the preset's style layers up to
    :data:`FINE_LAYERS_END`, and those of ``style`` at the deeper ones; each
    layer's term is divided by its target's mean square, so that every layer
    counts (unweighted, the shallow layers' large Gram matrices swamp the rest).

    Raises:
        OptionError: on ``fine_style`` when the style layers hold none up to :data:`FINE_LAYERS_END`.
        Interrupted: at step 0 when ``should_stop()`` turns True (nothing of the run is made yet).
    """
    p = settings.preset
    fine_layers = [n for n in p.style_layers if LAYER_INDEX[n] <= LAYER_INDEX[FINE_LAYERS_END]]
    if not fine_layers:
        raise OptionError(
            "fine_style", f"{{option}}: the style layers hold none up to {FINE_LAYERS_END}, where the fine texture is"
        )
    style = style.to(settings.device)
    fine = resize(fine, _shape_at(fine, max(style.shape[-2:]))).to(settings.device)
    vgg = get_vgg(settings.weights, settings.device)
    kw: dict[str, Any] = {"weights": Weights(1.0, 0.0, 0.0), "content_layers": [], "pooling": p.pooling}
    objective = Objective(vgg, style, style, style_layers=p.style_layers, **kw)
    objective.style_targets.update(Objective(vgg, style, fine, style_layers=fine_layers, **kw).style_targets)
    # each layer relative to its target's size: the layers' Gram matrices differ by orders of magnitude
    objective.layer_weights = [
        1.0 / max(float(objective.style_targets[n].square().mean()), 1e-30) for n in p.style_layers
    ]
    try:
        mixed = run_lbfgs(objective, style, evaluations, Reporter(evaluations, None, should_stop=should_stop), tv_eps=0)
    except Interrupted:
        raise Interrupted(style.cpu(), 0) from None
    return mixed.detach().cpu()


def mix_scales(inputs: Inputs, settings: Settings, should_stop: StopCheck | None = None) -> None:
    """Replace each style image by :func:`mixed_style` of it and ``inputs.fine_style``, made at the last scale's style size."""
    if inputs.fine_style is None:
        return
    p = settings.preset
    side = round(p.style_scale * p.size)
    styles = styles_at(inputs, p.size, replace(p, preserve_colors=None), inputs.content_pixels)
    check_shape("the fine_style image", inputs.fine_style, side, p.style_layers, "fine style")
    inputs.style_pixels = [mixed_style(settings, s, inputs.fine_style, should_stop=should_stop) for s in styles]
    inputs.fine_style = None


def stylize_tensor(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    settings: Settings,
    *,
    init: str | ImageLike | None = None,
    callback: Callback | None = None,
    should_stop: StopCheck | None = None,
    on_scale: Callable[[int, Tensor], None] | None = None,
) -> Tensor:
    """Decode the inputs and :func:`optimise`; the ``(1, 3, H, W)`` CPU image, before :func:`finish_image`."""
    inputs = decode_inputs(content, style, settings.preset.init if init is None else init, preset=settings.preset)
    return optimise(inputs, settings, callback=callback, should_stop=should_stop, on_scale=on_scale).image


def finish_image(image: Tensor, inputs: Inputs, settings: Settings) -> Image.Image:
    """The output picture: ``luminance`` colour mode applied, the content's alpha re-attached."""
    if settings.preset.preserve_colors in ("luminance", "luminance-only"):
        image = preserve_luminance(image, inputs.content_pixels)
    return with_alpha(image, inputs.alpha)


def evaluate(objective: Objective, image: ImageLike, content: Tensor) -> dict[str, float]:
    """``objective``'s weighted terms and their ``total`` for ``image`` resized to ``content``'s shape."""
    x = resize(to_tensor(image), (content.shape[-2], content.shape[-1])).to(content.device)
    with torch.no_grad():
        terms = {k: float(v) for k, v in objective.terms(x).items()}
    terms["total"] = terms["style"] + terms["content"] + terms["tv"]
    return terms


# --- The plan: scales, evaluations, time and memory, before any work ---------------------------

#: The long side of the probe whose measured evaluation time is scaled to every scale of the run.
PROBE_SIDE = 256

#: How an evaluation's time grows with its pixels ``n``: ``t ~ n ** PIXEL_EXPONENT``.
#: Fitted to the median evaluation of real runs on a 2-core AVX-512/AMX CPU
#: (``bench/estimate.py``, Tübingen x Starry Night, 2 threads): 0.547 s at
#: 256x192, 1.63 s at 512x384, 5.87 s at 1024x768 (exponents 0.79 and 0.92
#: between them): the fixed costs of small images fade as the size grows.
PIXEL_EXPONENT = 0.85

#: A run's evaluation against the probe's bare one: the optimiser's bookkeeping,
#: the reports and the line search's extra work (1.22 at 256x192 in the same runs).
RUN_OVERHEAD = 1.2

#: Pixels (512x384) above which a CPU evaluation grows faster than its pixels.
LARGE_PIXELS = 512 * 384

#: ``t ~ n ** e`` above :data:`LARGE_PIXELS` on a CPU, by precision: there every
#: activation is a fresh ``mmap`` that the kernel zeroes page by page (3.0
#: million page faults an evaluation at 2048x1536 in bf16), and the caches no
#: longer hold a layer.  Same CPU, 2 threads, 2026-11-29: bf16 in runs 0.65-0.76 s
#: at 512x384, 2.7-3.3 s at 1024x768, about 15 s at 2048x1536 (exponent 1.1
#: over the range; bare evaluations 0.36-0.39, 1.9-2.9, 13.1-15.3 s); fp32 bare
#: 1.38, 6.3, 33.8 s (1.15).
LARGE_PIXEL_EXPONENT = {"bf16": 1.1, "fp32": 1.15}


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


def _instant_seconds(settings: Settings, inputs: Inputs, side: int, repeats: int = 3) -> float:
    """The fastest of ``repeats`` instant passes (:func:`instant_image`) at long side ``side``, after one warm-up."""
    p = replace(settings.preset, size=side)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        instant_image(inputs, replace(settings, preset=p))
        if i >= 1:
            times.append(time.perf_counter() - start)
    return min(times)


def _evaluation_seconds(settings: Settings, inputs: Inputs, side: int, repeats: int = 3) -> float:
    """The fastest of ``repeats`` evaluations (forward, backward, losses) at long side ``side``, after two warm-ups.

    The fastest, not the mean: other work on the machine only ever adds time.
    Two warm-ups: oneDNN's bf16 kernels are still being set up in the second
    evaluation of a process (0.155 s against 0.10 s later at 256x192).
    """
    c = resize(inputs.content_pixels, _shape_at(inputs.content_pixels, side)).to(settings.device)
    s = [resize(t, _shape_at(t, side)).to(settings.device) for t in inputs.style_pixels]
    objective = build_objective(settings, c, s)
    x = c.clone().requires_grad_(True)
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        terms = objective.terms(x)
        (terms["style"] + terms["content"] + terms["tv"]).backward()  # type: ignore[no-untyped-call]
        if settings.device.type == "cuda":
            torch.cuda.synchronize(settings.device)
        if i >= 2:  # the first two warm up
            times.append(time.perf_counter() - start)
    return min(times)


def plan(inputs: Inputs, settings: Settings) -> dict[str, Any]:
    """What the run will do and cost, without optimising: ``--dry-run``.

    The time of one evaluation is measured at a small size (:data:`PROBE_SIDE`,
    or the run's own size when smaller) on this machine and scaled to each scale's pixels (:func:`scaled_seconds`);
    each scale adds one evaluation for its targets.  The peak memory is the memory guard's estimate
    (:func:`~styletransfer.memory.estimate_bytes`).  The evaluation counts are
    the budget: a run stopped by a convergence test takes fewer.

    Under bf16 with L-BFGS, a scale whose budget ``N`` exceeds the stopping
    window ``w`` may switch to its fp32 finish (:func:`optimise`) as early as
    after ``w + 1`` evaluations, so its time is bounded by ``(w + 2) t_bf16 +
    (N - w) t_fp32`` (each part computes its targets once), with ``t_fp32``
    probed as well.

    Returns:
        ``{"scales": [[H, W], ...], "evaluations": [n, ...], "seconds": s, "peak_bytes": b}``,
        plus ``"seconds_per_evaluation"`` at each scale, ``"fp32_finish_seconds_per_evaluation"``
        at each scale (``None`` where the scale cannot switch to an fp32
        finish), ``"device"``, and ``"stop_rule"``: ``{"rtol": r, "window": w}``
        when a stopping rule may end the run before those evaluations (then
        they and ``seconds`` are upper bounds), else ``None``; ``"budget"``:
        under a time budget ``{"seconds": B, "evaluations": [n, ...]}``, the
        evaluations each scale's share of ``B`` buys (``seconds`` is then at
        most ``B``), else ``None``.
    """
    p = settings.preset
    check_inputs(inputs, settings)
    h, w = inputs.content_pixels.shape[2], inputs.content_pixels.shape[3]
    shapes = [scaled_shape(h, w, size) for size in stage_sizes(p)]
    steps = stage_steps(p)
    side = min(PROBE_SIDE, p.size)  # a small run is probed at its own size
    probe_pixels = math.prod(scaled_shape(h, w, side))
    timed = _instant_seconds if p.instant else _evaluation_seconds

    def per_evaluation(s: Settings) -> list[float]:
        probe = timed(s, inputs, side)
        return [scaled_seconds(probe, probe_pixels, hh * ww, s.precision, s.device) for hh, ww in shapes]

    per_eval = per_evaluation(settings)
    switches = [settings.precision == "bf16" and p.stops_early and n > p.stop_window + 1 for n in steps]
    finish: list[float | None] = [None] * len(shapes)
    if any(switches):
        exact = per_evaluation(replace(settings, precision="fp32"))
        finish = [t if switch else None for t, switch in zip(exact, switches)]
    seconds = 0.0
    for n, t, t32 in zip(steps, per_eval, finish):
        first = n if t32 is None else p.stop_window + 1
        seconds += (first + 1) * t + (0.0 if t32 is None else (n - first + 1) * t32)
    bought: list[int] | None = None
    if settings.time_budget is not None:  # what the budget buys: each scale's share at its evaluation time
        ends = [0.0, *cast(list[float], scale_deadlines(0.0, settings.time_budget, shapes, steps))]
        shares = [b - a for a, b in zip(ends, ends[1:])]
        bought = [planned_evaluations(share - t, t, n) for share, t, n in zip(shares, per_eval, steps)]
        seconds = min(seconds, settings.time_budget)
    return {
        "scales": [list(s) for s in shapes],
        "evaluations": steps,
        "budget": None if bought is None else {"seconds": settings.time_budget, "evaluations": bought},
        "seconds": round(seconds, 1),
        "peak_bytes": estimate_bytes(p, *shapes[-1]),
        "seconds_per_evaluation": [round(t, 4) for t in per_eval],
        "fp32_finish_seconds_per_evaluation": [None if t is None else round(t, 4) for t in finish],
        "device": settings.device.type,
        "stop_rule": {"rtol": p.stop_rtol, "window": p.stop_window} if p.stops_early else None,
    }
