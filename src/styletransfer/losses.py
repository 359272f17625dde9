"""The seed's objective: Gram-matrix style loss, content loss, total variation.

For an image ``x`` with VGG19 activations ``F_l(x)`` of shape ``(C, H, W)``::

    G_l(x)[c, d] = sum_{i,j} F_l(x)[c, i, j] * F_l(x)[d, i, j] / (H * W)
    style   = style_weight / L_s * sum_{l in style}   mean_{c,d} (G_l(x) - G_l(s))^2
    content = content_weight / L_c * sum_{l in content} mean_{c,i,j} (F_l(x) - F_l(c))^2
    tv      = tv_weight * (sum |x[i+1, j] - x[i, j]| + sum |x[i, j+1] - x[i, j]|)

with ``s`` the style image, ``c`` the content image, and TV summed over all
channels of the [0, 1] image (``tf.image.total_variation``).  The Gram matrix
is normalised by the number of locations only, as in the seed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .errors import Notice, OptionError
from .masks import VANISHED, fit_mask, mask_weight, propagate
from .vgg import VGG19, preprocess
from .vgg_layers import check_layers


def gram_matrix(features: Tensor) -> Tensor:
    """``G[b, c, d] = sum_{i,j} F[b, c, i, j] F[b, d, i, j] / (H W)`` for ``(B, C, H, W)`` features."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (h * w)


class _GramDistance(torch.autograd.Function):
    """``mean((G(F) - A)^2)`` with a one-matmul backward (see :func:`gram_distance`)."""

    @staticmethod
    def forward(ctx: Any, features: Tensor, target: Tensor, norm: float | None = None) -> Tensor:
        b, c, h, w = features.shape
        ctx.channels_last = features.is_contiguous(memory_format=torch.channels_last) and c > 1
        flat = _pixels_by_channels(features) if ctx.channels_last else features.reshape(b, c, h * w).transpose(1, 2)
        ctx.norm = h * w if norm is None else norm
        diff = torch.bmm(flat.transpose(1, 2), flat).div_(ctx.norm).sub_(target)
        ctx.save_for_backward(flat, diff)
        ctx.shape = features.shape
        return diff.square().mean()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None, None]:
        flat, diff = ctx.saved_tensors
        b, c, h, w = ctx.shape
        scale = grad_output * (4.0 / (b * c * c * ctx.norm))
        if ctx.channels_last:  # (B, HW, C) = F^T (G - A), laid out as the features were
            return torch.bmm(flat, diff).mul_(scale).view(b, h, w, c).permute(0, 3, 1, 2), None, None
        return torch.bmm(diff, flat.transpose(1, 2)).mul_(scale).view(b, c, h, w), None, None


def _pixels_by_channels(features: Tensor) -> Tensor:
    """The ``(B, H W, C)`` view of channels-last ``(B, C, H, W)`` features (no copy)."""
    b, c, h, w = features.shape
    return features.permute(0, 2, 3, 1).reshape(b, h * w, c)


def gram_distance(features: Tensor, target: Tensor) -> Tensor:
    """``mean_{b,c,d} (G(F)[b, c, d] - A[c, d])^2`` with ``G`` of :func:`gram_matrix`.

    The value is the seed's per-layer style loss.  For a symmetric target
    ``A`` (a Gram matrix, or a mix of them) its gradient is::

        dL/dF = 4 / (B C^2 H W) * (G - A) F

    one matmul, where autograd through ``gram_matrix`` takes two and a sum of
    the two paths into ``F``.  ``target`` gets no gradient.

    Args:
        features: ``(B, C, H, W)`` activations.
        target: ``(C, C)`` or ``(B, C, C)`` symmetric target Gram matrix.
    """
    out: Tensor = _GramDistance.apply(features, target.detach())  # type: ignore[no-untyped-call]
    return out


class _GramDistances(torch.autograd.Function):
    """Per image ``mean_{c,d}((G(F_b) - A)^2)``, a ``(B,)`` vector, with a one-matmul backward."""

    @staticmethod
    def forward(ctx: Any, features: Tensor, target: Tensor) -> Tensor:
        b, c, h, w = features.shape
        ctx.channels_last = features.is_contiguous(memory_format=torch.channels_last) and c > 1
        flat = _pixels_by_channels(features) if ctx.channels_last else features.reshape(b, c, h * w).transpose(1, 2)
        diff = torch.bmm(flat.transpose(1, 2), flat).div_(h * w).sub_(target)
        ctx.save_for_backward(flat, diff)
        ctx.shape = features.shape
        return diff.square().mean(dim=(1, 2))

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        flat, diff = ctx.saved_tensors
        b, c, h, w = ctx.shape
        scale = grad_output.view(b, 1, 1) * (4.0 / (c * c * h * w))
        if ctx.channels_last:
            return torch.bmm(flat, diff).mul_(scale).view(b, h, w, c).permute(0, 3, 1, 2), None
        return torch.bmm(diff, flat.transpose(1, 2)).mul_(scale).view(b, c, h, w), None


def gram_distances(features: Tensor, target: Tensor) -> Tensor:
    """Each image's :func:`gram_distance`: ``d_b = mean_{c,d} (G(F)[b, c, d] - A[c, d])^2``, a ``(B,)`` vector.

    ``d_b`` depends on ``F[b]`` alone; the gradient of ``sum_b u_b d_b`` is
    ``dL/dF[b] = 4 u_b / (C^2 H W) * (G_b - A) F[b]``, one batched matmul for all images.
    """
    out: Tensor = _GramDistances.apply(features, target.detach())  # type: ignore[no-untyped-call]
    return out


def guided_gram(features: Tensor, mask: Tensor | None = None) -> Tensor:
    """The Gram matrix of ``features`` weighted by ``mask`` (Gatys et al. 2017's guided Gram matrix).

    ``G[c, d] = sum_p m_p^2 F[c, p] F[d, p] / sum_p m_p^2``: the features are
    multiplied by the mask, and the sum is normalised by the mask's own weight,
    not by ``H W``, so that a small region is not diluted.  An all-white mask
    (or ``None``) gives :func:`gram_matrix`; a binary mask gives the Gram matrix
    of the features inside it alone.

    Args:
        features: ``(B, C, H, W)`` activations.
        mask: ``(1, 1, H, W)`` weights in [0, 1] (:func:`styletransfer.masks.propagate`).
    """
    if mask is None:
        return gram_matrix(features)
    weighted = features * mask
    b, c, h, w = weighted.shape
    flat = weighted.reshape(b, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / float(mask.double().square().sum())


def guided_gram_distance(features: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """``mean((guided_gram(F, m) - A)^2)``, with :func:`gram_distance`'s one-matmul backward.

    The gradient reaches ``features`` through the mask's product only: it is
    zero wherever the mask is 0.  ``mask=None`` is :func:`gram_distance`.
    """
    if mask is None:
        return gram_distance(features, target)
    weighted = features * mask
    if features.is_contiguous(memory_format=torch.channels_last):
        weighted = weighted.contiguous(memory_format=torch.channels_last)
    out: Tensor = _GramDistance.apply(  # type: ignore[no-untyped-call]
        weighted, target.detach(), float(mask.double().square().sum())
    )
    return out


def neighbour_differences(image: Tensor) -> tuple[Tensor, Tensor]:
    """``x[i+1, j] - x[i, j]`` (vertical) and ``x[i, j+1] - x[i, j]`` (horizontal)."""
    return image[..., 1:, :] - image[..., :-1, :], image[..., :, 1:] - image[..., :, :-1]


def total_variation(image: Tensor) -> Tensor:
    """``sum |x[i+1,j] - x[i,j]| + sum |x[i,j+1] - x[i,j]|`` over all channels and the batch."""
    dy, dx = neighbour_differences(image)
    return dy.abs().sum() + dx.abs().sum()


def smooth_total_variation(image: Tensor, eps: float) -> Tensor:
    """Charbonnier TV: ``sum sqrt(d^2 + eps^2) - eps`` over the same differences as TV.

    It tends to the exact L1 TV as ``eps -> 0`` (the gap is at most ``eps``
    per difference) and is smooth, which L-BFGS's curvature model needs.
    """
    dy, dx = neighbour_differences(image)
    e2 = eps * eps
    return (torch.sqrt(dy * dy + e2) - eps).sum() + (torch.sqrt(dx * dx + e2) - eps).sum()


def total_variations(images: Tensor, eps: float = 0.0) -> Tensor:
    """Each image's TV, a ``(B,)`` vector: :func:`total_variation` (``eps = 0``) or :func:`smooth_total_variation`."""
    dy, dx = neighbour_differences(images)
    if eps <= 0:
        return dy.abs().sum(dim=(1, 2, 3)) + dx.abs().sum(dim=(1, 2, 3))
    e2 = eps * eps
    return (torch.sqrt(dy * dy + e2) - eps).sum(dim=(1, 2, 3)) + (torch.sqrt(dx * dx + e2) - eps).sum(dim=(1, 2, 3))


@dataclass(frozen=True)
class Weights:
    """The three loss weights (the seed's: style 1e-2, content 1e4, TV 30)."""

    style: float = 1e-2
    content: float = 1e4
    tv: float = 30.0


def blend_weights(blend: Sequence[float] | None, n_styles: int) -> list[float]:
    """Normalised style weights ``b_i / sum b``: equal when ``blend`` is ``None``."""
    if n_styles < 1:
        raise OptionError("style_blend", "at least one style image is needed")
    if blend is None:
        return [1.0 / n_styles] * n_styles
    values = [float(b) for b in blend]
    if len(values) != n_styles:
        raise OptionError(
            "style_blend", f"{{option}}: {len(values)} weights for {n_styles} style images; give one per style"
        )
    if any(not math.isfinite(b) or b < 0 for b in values) or sum(values) <= 0:
        raise OptionError("style_blend", f"{{option}}: weights must be finite, >= 0 and not all 0, not {values}")
    total = sum(values)
    return [b / total for b in values]


class RegionVanished(Notice):
    """A masked region has no weight left at a layer (pooled or eroded away): that layer's term is skipped."""


@dataclass
class Region:
    """One region's guided style terms.

    Attributes:
        masks: per style layer, the content mask there, or ``None`` for all white (no guidance).
        targets: per style layer, the target Gram matrix, or ``None`` where the region vanished.
        areas: per style layer, the region's share of the layer (``sum m^2 / (H W)``; 1 for all white).
        scale: ``n * b_i`` with a ``style_blend``, else 1.
    """

    masks: dict[str, Tensor | None]
    targets: dict[str, Tensor | None]
    areas: dict[str, float]
    scale: float


def _unless_white(mask: Tensor | None) -> Tensor | None:
    """``None`` for a mask that is 1 everywhere (it guides nothing, and the unguided path is exact)."""
    if mask is None or float(mask.min()) >= 1.0 - 1e-6:
        return None
    return mask


class Objective:
    """The seed's loss for one content image and one or more style images.

    The targets (content activations, style Gram matrices) are computed once,
    without gradients, when the objective is built.  With several styles the
    Gram targets are mixed: ``G_l = sum_i b_i G_l(style_i) / sum_i b_i``.  With
    style-layer weights ``w_l`` the style term is
    ``style_weight / n_style * sum_l w_l * mean((G_l(x) - G_l)^2)`` (the seed:
    every ``w_l = 1``).

    Args:
        vgg: the feature network.
        content: ``(1, 3, H, W)`` content image in [0, 1].
        style: ``(1, 3, H', W')`` style image in [0, 1], or a sequence of them;
            sizes may differ.
        weights: the loss weights.
        content_layers, style_layers: VGG19 layer names.
        style_blend: one non-negative weight per style (default: equal).
        style_layer_weights: one weight per style layer (default: all 1).
        pooling: ``"max"`` or ``"avg"`` (see :meth:`VGG19.forward`).
        precision: ``"fp32"``, or ``"bf16"``: the network runs under autocast
            to bfloat16 (targets and optimised image alike) and its
            activations are cast back to fp32 for the Gram matrices and the
            losses.  (``"tf32"`` is a CUDA switch set by the pipeline; the
            arithmetic here is fp32.)
        masks: regional styles (Gatys et al. 2017): ``(1, 1, H, W)`` weights
            in [0, 1] at the content's shape, one per style (each style paints
            its region), or one for all (the blended style paints it).  Each
            region's term uses :func:`guided_gram` with the mask propagated to
            the layer (``mask_mode``, see :func:`styletransfer.masks.propagate`)
            and is weighted by the region's area at that layer; with
            ``style_blend`` also by ``n * b_i``.  Where every mask is 0 there is
            no style loss.  A region that vanishes at a layer
            (:data:`~styletransfer.masks.VANISHED`) skips that term, with a
            :class:`RegionVanished` notice.
        style_masks: per style, ``None`` or the part of the style image whose
            statistics are used (at that style's shape).
        style_targets: the mixed Gram targets by style layer, already computed
            for these styles, blend and pooling (:attr:`style_targets` of an
            earlier objective): reused instead of computed again.
    """

    def __init__(
        self,
        vgg: VGG19,
        content: Tensor,
        style: Tensor | Sequence[Tensor],
        *,
        weights: Weights,
        content_layers: Sequence[str],
        style_layers: Sequence[str],
        style_blend: Sequence[float] | None = None,
        style_layer_weights: Sequence[float] | None = None,
        pooling: str = "max",
        precision: str = "fp32",
        masks: Sequence[Tensor] | None = None,
        style_masks: Sequence[Tensor | None] | None = None,
        mask_mode: str = "simple",
        style_targets: dict[str, Tensor] | None = None,
    ) -> None:
        self.vgg = vgg
        self.weights = weights
        self.pooling = pooling
        self.precision = precision
        self.device = content.device
        self.shape = (content.shape[-2], content.shape[-1])
        self.content_layers = check_layers(content_layers, "content_layers")
        self.style_layers = check_layers(style_layers, "style_layers")
        if not self.content_layers and not self.style_layers:
            raise OptionError("style_layers", "at least one content or style layer is needed")
        styles = [style] if isinstance(style, Tensor) else list(style)
        blend = blend_weights(style_blend, len(styles))
        if style_layer_weights is None:
            self.layer_weights = [1.0] * len(self.style_layers)
        else:
            self.layer_weights = [float(w) for w in style_layer_weights]
            if len(self.layer_weights) != len(self.style_layers):
                raise OptionError(
                    "style_layer_weights",
                    f"{{option}}: {len(self.layer_weights)} weights for {len(self.style_layers)} style layers; "
                    "give one per layer",
                )
        self.layers = list(dict.fromkeys(self.style_layers + self.content_layers))
        #: The guided terms, when there are masks: see :class:`Region`.
        self.regions: list[Region] | None = None
        with torch.no_grad():
            self.content_targets = self.target_features(content, self.content_layers)
            self.style_targets: dict[str, Tensor] = {}
            if masks is None and style_masks is None:
                if style_targets is not None:
                    self.style_targets = {n: style_targets[n] for n in self.style_layers}
                    styles = []
                for image, b in zip(styles, blend):
                    grams = self.target_grams(image, {})
                    for n in self.style_layers:
                        g = b * grams[n]
                        self.style_targets[n] = g if n not in self.style_targets else self.style_targets[n] + g
            else:
                self._build_regions(styles, blend, style_blend is not None, masks, style_masks, mask_mode)

    def _build_regions(
        self,
        styles: list[Tensor],
        blend: list[float],
        blended: bool,
        masks: Sequence[Tensor] | None,
        style_masks: Sequence[Tensor | None] | None,
        mode: str,
    ) -> None:
        """The guided targets: one :class:`Region` per mask (see the class's ``masks`` argument)."""
        vanished: list[str] = []
        targets: list[dict[str, Tensor | None]] = []
        for i, image in enumerate(styles):
            r = None if style_masks is None else style_masks[i]
            seen = (
                {}
                if r is None
                else propagate(fit_mask(r, (image.shape[-2], image.shape[-1])).to(image), self.style_layers, mode)
            )
            guides: dict[str, Tensor | None] = {}
            gone: set[str] = set()
            for n in self.style_layers:
                m = _unless_white(seen.get(n))
                if m is not None and mask_weight(m) < VANISHED:
                    gone.add(n)
                    vanished.append(f"style {i + 1}'s own region at {n}")
                else:
                    guides[n] = m
            grams = self.target_grams(image, guides)
            targets.append({n: None if n in gone else grams[n] for n in self.style_layers})
        if masks is None or len(masks) == 1:  # one region (the whole image, or one mask): the blended target
            mixed: dict[str, Tensor | None] = {}
            for n in self.style_layers:
                total: Tensor | None = None
                for b, t in zip(blend, targets):
                    g = t[n]
                    if g is not None:
                        total = b * g if total is None else total + b * g
                mixed[n] = total
            regions = [(None if masks is None else masks[0], mixed, 1.0)]
        else:
            n_styles = len(styles)
            regions = [(m, t, n_styles * b if blended else 1.0) for m, t, b in zip(masks, targets, blend)]
        self.regions = []
        for i, (mask, target, scale) in enumerate(regions):
            seen = (
                {} if mask is None else propagate(fit_mask(mask, self.shape).to(self.device), self.style_layers, mode)
            )
            layer_masks: dict[str, Tensor | None] = {}
            areas: dict[str, float] = {}
            for n in self.style_layers:
                m = _unless_white(seen.get(n))
                area = 1.0 if m is None else mask_weight(m) / (m.shape[-2] * m.shape[-1])
                if m is not None and mask_weight(m) < VANISHED:
                    vanished.append(f"region {i + 1} at {n}")
                    target[n] = None
                layer_masks[n] = m
                areas[n] = area
            self.regions.append(Region(layer_masks, target, areas, scale))
        if vanished:
            warnings.warn(
                RegionVanished(
                    f"a region vanishes at a layer ({', '.join(vanished)}): "
                    "its term there is skipped (a larger region or a larger size keeps it)"
                ),
                stacklevel=4,
            )

    def target_features(self, image: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """A target image's activations at ``layers`` (the content targets; called without gradients).

        :meth:`features`; a tiled objective assembles them tile by tile.
        """
        return self.features(image, layers)

    def target_grams(self, image: Tensor, masks: Mapping[str, Tensor | None]) -> dict[str, Tensor]:
        """``guided_gram(F_l(image), m_l)`` at each style layer ``l``: a style target (called without gradients).

        ``m_l = masks.get(l)``: the style's own mask at the layer, or none (a
        plain :func:`gram_matrix`).  A tiled objective sums the tiles' Gram
        matrices instead.
        """
        feats = self.features(image, self.style_layers)
        return {n: guided_gram(feats[n], masks.get(n)) for n in self.style_layers}

    def features(self, image: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """The network's activations of ``image`` at ``layers``, in fp32 (computed in bf16 under ``precision="bf16"``)."""
        if self.precision != "bf16":
            exact: dict[str, Tensor] = self.vgg(preprocess(image), layers, self.pooling)
            return exact
        with torch.autocast(image.device.type, dtype=torch.bfloat16):
            feats = self.vgg(preprocess(image), layers, self.pooling)
        return {name: f.float() for name, f in feats.items()}

    def terms(self, image: Tensor) -> dict[str, Tensor]:
        """The weighted terms ``{"style", "content", "tv"}`` as scalar tensors."""
        feats = self.features(image, self.layers)
        zero = image.new_zeros(())
        style = zero
        if self.regions is None:
            for name, w in zip(self.style_layers, self.layer_weights):
                style = style + w * gram_distance(feats[name], self.style_targets[name])
        else:
            for name, w in zip(self.style_layers, self.layer_weights):
                for region in self.regions:
                    target = region.targets[name]
                    if target is None:  # vanished here
                        continue
                    d = guided_gram_distance(feats[name], target, region.masks[name])
                    style = style + w * ((region.scale * region.areas[name]) * d)
        if self.style_layers:
            style = style * (self.weights.style / len(self.style_layers))
        content = zero
        for name in self.content_layers:
            content = content + torch.mean((feats[name] - self.content_targets[name]) ** 2)
        if self.content_layers:
            content = content * (self.weights.content / len(self.content_layers))
        tv = self.weights.tv * total_variation(image)
        return {"style": style, "content": content, "tv": tv}

    def __call__(self, image: Tensor) -> Tensor:
        """The total loss ``style + content + tv``."""
        t = self.terms(image)
        return t["style"] + t["content"] + t["tv"]


class BatchObjective:
    """Several images' objectives evaluated in one batched forward and backward pass.

    Image ``b`` of a batch ``X = (x_1 .. x_B)`` gets its own content target
    ``c_b`` and the style targets ``G_l`` shared by all::

        style_b   = style_weight / L_s * sum_l w_l * mean_{c,d} (G_l(x_b) - G_l)^2
        content_b = content_weight / L_c * sum_l mean_{c,i,j} (F_l(x_b) - F_l(c_b))^2
        tv_b      = tv_weight * TV(x_b)

    exactly :meth:`Objective.terms` of image ``b`` alone: the network runs on
    the stacked batch, and each term is one batched operation over the
    images' own axes (:func:`gram_distances`: all Gram matrices in one
    matmul).  ``f_b`` depends on ``x_b`` only, so the gradient of
    ``sum_b f_b`` with respect to ``X`` holds each image's own gradient.

    Args:
        objectives: one :class:`Objective` per image, all at one shape, with
            the same network, weights, layers, pooling, precision and style
            targets, and no regions.

    Raises:
        ValueError: when the objectives differ in anything but their content.
    """

    def __init__(self, objectives: Sequence[Objective]) -> None:
        if not objectives:
            raise ValueError("a batch needs at least one objective")
        first = objectives[0]
        for o in objectives:
            same = (
                o.vgg is first.vgg
                and o.shape == first.shape
                and o.weights == first.weights
                and o.layers == first.layers
                and o.style_layers == first.style_layers
                and o.layer_weights == first.layer_weights
                and (o.pooling, o.precision) == (first.pooling, first.precision)
                and o.regions is None
                and all(o.style_targets[n] is first.style_targets[n] for n in first.style_layers)
            )
            if not same:
                raise ValueError("the objectives of a batch may differ in their content alone")
        self.objectives = list(objectives)
        self.weights = first.weights

    def terms(self, images: Tensor, which: Sequence[int] | None = None) -> dict[str, Tensor]:
        """The weighted terms ``{"style", "content", "tv"}``, each a ``(B,)`` vector (one value per image).

        One forward pass for the batch; each term is one batched operation
        (:func:`gram_distances`, a mean and a sum over each image's own axes).

        Args:
            images: ``(B, 3, H, W)``, image ``j`` evaluated against objective ``which[j]``
                (default: objective ``j``).
        """
        which = range(len(self.objectives)) if which is None else which
        first = self.objectives[0]
        feats = first.features(images, first.layers)
        zero = images.new_zeros(images.shape[0])
        style = zero
        for name, w in zip(first.style_layers, first.layer_weights):
            style = style + w * gram_distances(feats[name], first.style_targets[name])
        if first.style_layers:
            style = style * (self.weights.style / len(first.style_layers))
        content = zero
        for name in first.content_layers:
            target = torch.cat([self.objectives[k].content_targets[name] for k in which])
            content = content + ((feats[name] - target) ** 2).mean(dim=(1, 2, 3))
        if first.content_layers:
            content = content * (self.weights.content / len(first.content_layers))
        tv = self.weights.tv * total_variations(images)
        return {"style": style, "content": content, "tv": tv}
