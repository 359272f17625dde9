"""The objective at one scale: the content and the styles resized, the style targets computed once.

Style targets (the Gram matrices of the style images) are kept per process by
a digest of what they depend on, so a batch or a video stylising many
contents with one style computes them once.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor

from ..color import luminance_image, match_color, match_luminance
from ..errors import OptionError
from ..images import ImageLike, resize, to_tensor
from ..losses import Objective, Weights
from ..masks import (
    fit_mask,
    propagate,
)
from ..options import MAX_SIZE
from ..presets import Preset
from ..tiling import TiledObjective
from ..vgg import get_vgg
from ..vgg_layers import min_input_side
from .inputs import Inputs, decode_inputs, load_checked
from .settings import Settings
from .tiles import tile_at

#: The longest style image side that ``style_scale`` may ask for, pixels: an output's own limit.  Whether
#: the style's forward fits is the memory guard's question (it counts the style's pixels, and a run
#: that does not fit whole computes the style targets in tiles too).
MAX_STYLE_SIDE = MAX_SIZE


class StyleTargets:
    """Style targets kept for reuse, by :func:`_style_key`, the oldest dropped past ``kept`` (a few MiB each).

    A batch or a video stylises many contents with the same styles at the
    same size: their Gram matrices are computed once per process.  The
    studio runs jobs on several threads (one per device), hence the lock.
    """

    def __init__(self, kept: int = 8) -> None:
        self.kept = kept
        self._items: dict[str, dict[str, Tensor]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Tensor] | None:
        with self._lock:
            return self._items.get(key)

    def keep(self, key: str, targets: dict[str, Tensor]) -> None:
        with self._lock:
            if key in self._items:
                return
            while len(self._items) >= self.kept:
                del self._items[next(iter(self._items))]
            self._items[key] = targets

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


#: The process's style targets.
STYLE_TARGETS = StyleTargets()


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
    tile: int | None = None,
) -> Objective:
    """The run's objective (its weights, layers, blend, pooling and masks) for ``content`` and ``styles`` at their size.

    Computes the content targets (one VGG forward, no gradient); the style
    targets are computed once per process for the same style pixels and
    settings, and reused (the same numbers: the same forward of the same pixels).
    Regional (masked) targets depend on the masks and are not reused.
    With ``tile`` (pixels a side) it is a :class:`~styletransfer.tiling.TiledObjective`:
    the same loss and gradient, every network pass on tiles.
    """
    p = settings.preset
    styles = [styles] if isinstance(styles, Tensor) else list(styles)
    vgg = get_vgg(settings.weights, settings.device)
    regional = masks is not None or style_masks is not None
    key = _style_key(settings, styles)
    build: Any = Objective if tile is None else partial(TiledObjective, tile=tile)
    objective: Objective = build(
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
        style_targets=None if regional else STYLE_TARGETS.get(key),
    )
    if not regional:
        STYLE_TARGETS.keep(key, objective.style_targets)
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
    return build_objective(settings, c, s, **regions, tile=tile_at(inputs, settings, size)), c, s


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


def evaluate(objective: Objective, image: ImageLike, content: Tensor) -> dict[str, float]:
    """``objective``'s weighted terms and their ``total`` for ``image`` resized to ``content``'s shape."""
    x = resize(to_tensor(image), (content.shape[-2], content.shape[-1])).to(content.device)
    with torch.no_grad():
        terms = {k: float(v) for k, v in objective.terms(x).items()}
    terms["total"] = terms["style"] + terms["content"] + terms["tv"]
    return terms
