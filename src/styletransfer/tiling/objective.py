"""The seed's objective evaluated tile by tile: the whole image's loss and gradient, in one tile's memory.

The style term depends on the image only through Gram matrices, sums over
positions.  With the tiles' cores ``T_k`` covering the image once and exact
activations there (:mod:`styletransfer.tiling.grid`)::

    S_l = sum_k sum_{p in T_k} (m_p F_l[:, p]) (m_p F_l[:, p])^T,   G_l = S_l / N_l

with ``m`` a region's mask at the layer (1 without masks) and ``N_l`` the
whole image's normaliser (``H_l W_l``, or ``sum m^2``), so ``G_l`` is the
untiled Gram matrix.  Hence two passes per evaluation:

1. a forward pass per tile, without gradients, sums ``S_l`` (and the
   content term, a sum over positions too); the loss follows, and with it
   ``D_l = dL/dG_l``, now fixed;
2. a forward and backward pass per tile sends, at each core position,
   ``dL/dF_l[:, p] = 2 / N_l * m_p D_l (m_p F_l[:, p])`` (``D_l`` is
   symmetric) and the content term's ``2 w_c / (L_c n_l) (F_l - F_l(c))``
   back to the tile's pixels; the tiles' image gradients add up (a halo
   pixel gets gradient from its neighbours' cores).

The second pass runs in the backward of an autograd function, so the
optimisers see :meth:`TiledObjective.terms` as they see
:meth:`Objective.terms` (scalars differentiable in the image), and it uses
the weights autograd hands it for the style and content terms.  TV is a
local term on the image itself: it is computed whole.  The style and content
targets are computed tile by tile as well (the content's activations
assembled from the cores, the style's Gram matrices summed).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..losses import Objective, total_variation
from ..vgg import VGG19
from ..vgg_layers import LAYER_INDEX, LAYERS
from .grid import Tile, split


def _factor(name: str) -> int:
    return LAYERS[LAYER_INDEX[name]].factor


def _pixels(core: Tensor) -> Tensor:
    """A ``(1, C, h, w)`` core as ``(h w, C)`` rows."""
    return core.permute(0, 2, 3, 1).reshape(-1, core.shape[1])


def _unpixels(rows: Tensor, like: Tensor) -> Tensor:
    """``(h w, C)`` rows back in ``like``'s ``(1, C, h, w)`` shape."""
    _, c, h, w = like.shape
    return rows.reshape(1, h, w, c).permute(0, 3, 1, 2)


class _Cut:
    """One tile's core at one layer: its place in the tile's activations and in the whole image's."""

    def __init__(self, tile: Tile, factor: int) -> None:
        a, b, ya, yb = tile.y.rows(factor)
        c, d, xa, xb = tile.x.rows(factor)
        self.own = (slice(None), slice(None), slice(a, b), slice(c, d))
        self.whole = (slice(None), slice(None), slice(ya, yb), slice(xa, xb))


class TiledObjective(Objective):
    """:class:`~styletransfer.losses.Objective` whose every network pass runs on tiles of at most ``tile`` pixels a side.

    Its loss and gradient are the untiled objective's (up to the order of
    float sums); its memory is one tile's forward and backward, the Gram
    matrices and the image-sized targets (see the module's two passes).

    Args:
        tile: the largest tile side, pixels: a multiple of the layers' grid,
            larger than two halos (:func:`~styletransfer.tiling.grid.check_tile_size`).
        the rest: as :class:`~styletransfer.losses.Objective`, for one image (a batch of one).
    """

    def __init__(self, vgg: VGG19, content: Tensor, style: Tensor | Sequence[Tensor], *, tile: int, **kwargs: Any):
        self.tile = tile
        super().__init__(vgg, content, style, **kwargs)

    def _tiles(self, image: Tensor, layers: Sequence[str]) -> Iterator[tuple[Tile, dict[str, Tensor]]]:
        """Each tile of ``image`` and its activations at ``layers`` (under the caller's grad mode)."""
        for tile in split(image.shape[-2], image.shape[-1], self.tile, layers):
            box = image[..., tile.y.start : tile.y.stop, tile.x.start : tile.x.stop]
            yield tile, self.features(box, layers)

    def target_features(self, image: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """The whole image's activations at ``layers``, each core written into its place."""
        h, w = image.shape[-2], image.shape[-1]
        out: dict[str, Tensor] = {}
        for tile, feats in self._tiles(image, layers):
            for n in layers:
                f = _factor(n)
                if n not in out:
                    out[n] = feats[n].new_zeros((1, feats[n].shape[1], h // f, w // f))
                cut = _Cut(tile, f)
                out[n][cut.whole] = feats[n][cut.own]
        return out

    def target_grams(self, image: Tensor, masks: Mapping[str, Tensor | None]) -> dict[str, Tensor]:
        """``sum_k (m F)_k^T (m F)_k / N_l`` over the tiles' cores: the whole image's (guided) Gram matrices."""
        sums: dict[str, Tensor] = {}
        for tile, feats in self._tiles(image, self.style_layers):
            for n in self.style_layers:
                rows = self._rows(feats[n], tile, n, masks.get(n))
                s = rows.T @ rows
                sums[n] = s if n not in sums else sums[n] + s
        h, w = image.shape[-2], image.shape[-1]
        return {n: (sums[n] / self._norm(n, masks.get(n), h, w)).unsqueeze(0) for n in self.style_layers}

    @staticmethod
    def _rows(feature: Tensor, tile: Tile, name: str, mask: Tensor | None) -> Tensor:
        """The core's activations at layer ``name`` as ``(positions, C)`` rows, times the mask there if any."""
        cut = _Cut(tile, _factor(name))
        rows = _pixels(feature[cut.own])
        return rows if mask is None else rows * _pixels(mask[cut.whole])

    @staticmethod
    def _norm(name: str, mask: Tensor | None, height: int, width: int) -> float:
        """``N_l``: the layer's positions ``H_l W_l``, or the mask's weight ``sum m^2`` (as :func:`guided_gram`)."""
        if mask is None:
            f = _factor(name)
            return float((height // f) * (width // f))
        return float(mask.double().square().sum())

    def _guides(self) -> list[tuple[dict[str, Tensor | None], dict[str, float]]]:
        """Per region (one, unguided, without masks): its targets and its weights ``scale * area``, by layer."""
        if self.regions is None:
            plain: dict[str, Tensor | None] = dict(self.style_targets)
            return [(plain, dict.fromkeys(self.style_layers, 1.0))]
        return [(r.targets, {n: r.scale * r.areas[n] for n in self.style_layers}) for r in self.regions]

    def terms(self, image: Tensor) -> dict[str, Tensor]:
        """The weighted terms ``{"style", "content", "tv"}``, as :meth:`Objective.terms` gives them, tile by tile."""
        if image.shape[0] != 1:
            raise ValueError("a tiled objective takes one image")
        style, content = _TiledTerms.apply(image, self)  # type: ignore[no-untyped-call]
        return {"style": style, "content": content, "tv": self.weights.tv * total_variation(image)}

    def first_pass(self, image: Tensor) -> tuple[Tensor, Tensor, dict[tuple[str, int], Tensor]]:
        """Pass 1, without gradients: the style and content terms, and each ``2 / N_l * dL/dG_l`` by (layer, region)."""
        h, w = image.shape[-2], image.shape[-1]
        guides = self._guides()
        sums: dict[tuple[str, int], Tensor] = {}
        content = image.new_zeros(())
        with torch.no_grad():
            for tile, feats in self._tiles(image, self.layers):
                for n in self.style_layers:
                    for r, (targets, _) in enumerate(guides):
                        if targets[n] is None:
                            continue
                        rows = self._rows(feats[n], tile, n, self._mask(r, n))
                        s = rows.T @ rows
                        sums[n, r] = s if (n, r) not in sums else sums[n, r] + s
                for n in self.content_layers:
                    cut = _Cut(tile, _factor(n))
                    diff = feats[n][cut.own] - self.content_targets[n][cut.whole]
                    content = content + diff.square().sum() / self.content_targets[n].numel()
            style = image.new_zeros(())
            slopes: dict[tuple[str, int], Tensor] = {}
            per_layer = self.weights.style / max(1, len(self.style_layers))
            for (n, r), s in sums.items():
                target = guides[r][0][n]
                assert target is not None
                norm = self._norm(n, self._mask(r, n), h, w)
                diff = s / norm - target.reshape(s.shape)
                w_lr = per_layer * self.layer_weights[self.style_layers.index(n)] * guides[r][1][n]
                style = style + w_lr * diff.square().mean()
                slopes[n, r] = diff * (w_lr * 2.0 / diff.numel() * 2.0 / norm)
            if self.content_layers:
                content = content * (self.weights.content / len(self.content_layers))
        return style, content, slopes

    def _mask(self, region: int, name: str) -> Tensor | None:
        return None if self.regions is None else self.regions[region].masks[name]

    def second_pass(
        self, image: Tensor, slopes: Mapping[tuple[str, int], Tensor], style_grad: Tensor, content_grad: Tensor
    ) -> Tensor:
        """Pass 2: ``style_grad * d style / d image + content_grad * d content / d image``, tile by tile."""
        grad = torch.zeros_like(image)
        content_scale = content_grad * (self.weights.content / max(1, len(self.content_layers)))
        for tile in split(image.shape[-2], image.shape[-1], self.tile, self.layers):
            box = (..., slice(tile.y.start, tile.y.stop), slice(tile.x.start, tile.x.stop))
            x = image[box].detach().requires_grad_(True)
            with torch.enable_grad():
                feats = self.features(x, self.layers)
            outs, grads = [], []
            with torch.no_grad():
                for n in self.layers:
                    cut = _Cut(tile, _factor(n))
                    core = feats[n][cut.own]
                    g = torch.zeros_like(core)
                    for (name, r), slope in slopes.items():
                        if name != n:
                            continue
                        mask = self._mask(r, n)
                        rows = _pixels(core)
                        if mask is None:
                            g = g + _unpixels(rows @ slope, core) * style_grad
                        else:
                            m = _pixels(mask[cut.whole])
                            g = g + _unpixels(m * ((m * rows) @ slope), core) * style_grad
                    if n in self.content_layers:
                        target = self.content_targets[n]
                        g = g + (core - target[cut.whole]) * (content_scale * 2.0 / target.numel())
                    full = torch.zeros_like(feats[n])
                    full[cut.own] = g
                    outs.append(feats[n])
                    grads.append(full)
            torch.autograd.backward(outs, grads)
            assert x.grad is not None
            grad[box] += x.grad
        return grad


class _TiledTerms(torch.autograd.Function):
    """``(style, content)`` of a :class:`TiledObjective`: pass 1 forward, pass 2 in the backward."""

    @staticmethod
    def forward(ctx: Any, image: Tensor, owner: TiledObjective) -> tuple[Tensor, Tensor]:
        style, content, slopes = owner.first_pass(image)
        ctx.owner = owner
        ctx.slopes = slopes
        ctx.save_for_backward(image)
        return style, content

    @staticmethod
    def backward(ctx: Any, style_grad: Tensor, content_grad: Tensor) -> tuple[Tensor, None]:
        (image,) = ctx.saved_tensors
        return ctx.owner.second_pass(image, ctx.slopes, style_grad, content_grad), None
