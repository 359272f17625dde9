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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .architecture import check_layers
from .errors import OptionError
from .vgg import VGG19, preprocess


def gram_matrix(features: Tensor) -> Tensor:
    """``G[b, c, d] = sum_{i,j} F[b, c, i, j] F[b, d, i, j] / (H W)`` for ``(B, C, H, W)`` features."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (h * w)


class _GramDistance(torch.autograd.Function):
    """``mean((G(F) - A)^2)`` with a one-matmul backward (see :func:`gram_distance`)."""

    @staticmethod
    def forward(ctx: Any, features: Tensor, target: Tensor) -> Tensor:
        b, c, h, w = features.shape
        ctx.channels_last = features.is_contiguous(memory_format=torch.channels_last) and c > 1
        flat = _pixels_by_channels(features) if ctx.channels_last else features.reshape(b, c, h * w).transpose(1, 2)
        diff = torch.bmm(flat.transpose(1, 2), flat).div_(h * w).sub_(target)
        ctx.save_for_backward(flat, diff)
        ctx.shape = features.shape
        return diff.square().mean()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        flat, diff = ctx.saved_tensors
        b, c, h, w = ctx.shape
        scale = grad_output * (4.0 / (b * c * c * h * w))
        if ctx.channels_last:  # (B, HW, C) = F^T (G - A), laid out as the features were
            return torch.bmm(flat, diff).mul_(scale).view(b, h, w, c).permute(0, 3, 1, 2), None
        return torch.bmm(diff, flat.transpose(1, 2)).mul_(scale).view(b, c, h, w), None


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
        style_targets: dict[str, Tensor] | None = None,
    ) -> None:
        self.vgg = vgg
        self.weights = weights
        self.pooling = pooling
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
        with torch.no_grad():
            c_feats = vgg(preprocess(content), self.content_layers, pooling)
            self.content_targets = {n: c_feats[n] for n in self.content_layers}
            self.style_targets: dict[str, Tensor] = {}
            if style_targets is not None:
                self.style_targets = {n: style_targets[n] for n in self.style_layers}
                styles = []
            for image, b in zip(styles, blend):
                s_feats = vgg(preprocess(image), self.style_layers, pooling)
                for n in self.style_layers:
                    g = b * gram_matrix(s_feats[n])
                    self.style_targets[n] = g if n not in self.style_targets else self.style_targets[n] + g

    def terms(self, image: Tensor) -> dict[str, Tensor]:
        """The weighted terms ``{"style", "content", "tv"}`` as scalar tensors."""
        feats = self.vgg(preprocess(image), self.layers, self.pooling)
        zero = image.new_zeros(())
        style = zero
        for name, w in zip(self.style_layers, self.layer_weights):
            style = style + w * gram_distance(feats[name], self.style_targets[name])
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
