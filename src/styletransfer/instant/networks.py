"""The two networks of arbitrary style transfer (Ghiasi et al. 2017), as TF Hub's TF-Lite models build them.

**Style predictor** (:class:`StylePredictor`): MobileNetV2 (width 1.0,
ReLU6, TF's "same" padding) on a 256x256 style image in [0, 1], global
average pooling of its 1280 channels, and a 1x1 convolution to the
100-dimensional style vector ``S``.

**Style transformer** (:class:`StyleTransformer`), on the content ``x`` in
[0, 1] and ``S``; reflect padding before every convolution:

* contract: 9x9 conv 3->8, 3x3 conv 8->16 stride 2, 3x3 conv 16->32 stride 2, each + ReLU;
* five residual blocks ``h + N(conv(ReLU(N(conv(h)))))`` at 32 channels;
* expand: nearest x2 upsampling + 3x3 conv 32->16, again 16->8, each ``N`` + ReLU;
  then 9x9 conv 8->3, ``N`` and a sigmoid.

``N`` is the conditional instance norm: per channel ``c``,
``N(h)_c = gamma_c(S) (h_c - mean(h_c)) / sqrt(var(h_c) + eps) + beta_c(S)``
(mean and variance over the image's pixels), with ``gamma = W_g S + b_g`` and
``beta = W_b S + b_b`` read from the file.  The network is fully
convolutional: any size whose sides are multiples of 4 goes through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: MobileNetV2's blocks whose depthwise convolution has stride 2 (the first conv has stride 2 too).
_STRIDE2 = frozenset({1, 3, 6, 13})
_BLOCKS = 17
STYLE_DIM = 100
RESIDUAL_BLOCKS = 5


def _same_pad(x: Tensor, stride: int) -> Tensor:
    """TF's "same" padding of a 3x3 convolution: 1 on every side at stride 1, bottom/right only at stride 2."""
    return F.pad(x, (1, 1, 1, 1) if stride == 1 else (0, 1, 0, 1))


class _Convs(nn.Module):
    """Holds named convolution weights as buffers (frozen: these networks are never trained here)."""

    def __init__(self, weights: Mapping[str, Tensor], names: list[str]) -> None:
        super().__init__()
        self._keys: dict[str, str] = {}
        for i, name in enumerate(names):
            try:
                w, b = weights[name + "/weight"], weights[name + "/bias"]
            except KeyError:
                raise KeyError(name) from None
            self.register_buffer(f"w{i}", w.float().contiguous())
            self.register_buffer(f"b{i}", b.float().contiguous())
            self._keys[name] = str(i)

    def conv(self, name: str, x: Tensor, stride: int = 1, groups: int = 1) -> Tensor:
        i = self._keys[name]
        w: Tensor = getattr(self, "w" + i)
        b: Tensor = getattr(self, "b" + i)
        return F.conv2d(x, w, b, stride=stride, groups=groups)

    def weight(self, name: str) -> Tensor:
        w: Tensor = getattr(self, "w" + self._keys[name])
        return w

    def bias(self, name: str) -> Tensor:
        b: Tensor = getattr(self, "b" + self._keys[name])
        return b


class StylePredictor(_Convs):
    """MobileNetV2 to the 100-d style vector: ``(N, 3, 256, 256)`` in [0, 1] -> ``(N, 100)``."""

    def __init__(self, weights: Mapping[str, Tensor]) -> None:
        names = ["MobilenetV2/Conv"]
        for i in range(_BLOCKS):
            block = "MobilenetV2/expanded_conv" + (f"_{i}" if i else "")
            names += ([block + "/expand"] if i else []) + [block + "/depthwise", block + "/project"]
        super().__init__(weights, [*names, "MobilenetV2/Conv_1", "mobilenet_conv/Conv"])

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv("MobilenetV2/Conv", _same_pad(x, 2), stride=2).clamp(0.0, 6.0)
        for i in range(_BLOCKS):
            block = "MobilenetV2/expanded_conv" + (f"_{i}" if i else "")
            stride = 2 if i in _STRIDE2 else 1
            e = self.conv(block + "/expand", h).clamp(0.0, 6.0) if i else h
            d = self.weight(block + "/depthwise")
            e = self.conv(block + "/depthwise", _same_pad(e, stride), stride=stride, groups=d.shape[0]).clamp(0.0, 6.0)
            out = self.conv(block + "/project", e)
            h = h + out if stride == 1 and out.shape == h.shape else out
        h = self.conv("MobilenetV2/Conv_1", h).clamp(0.0, 6.0).mean(dim=(2, 3), keepdim=True)
        return self.conv("mobilenet_conv/Conv", h).flatten(1)


#: The transformer's normalised convolutions, in order, with their kernel sizes (the contract convs have none).
_CONTRACT = ("transformer/contract/conv1", "transformer/contract/conv2", "transformer/contract/conv3")
_RESIDUAL = tuple(f"transformer/residual/residual{i}/conv{j}" for i in range(1, RESIDUAL_BLOCKS + 1) for j in (1, 2))
_EXPAND = ("transformer/expand/conv1/conv", "transformer/expand/conv2/conv", "transformer/expand/conv3/conv")


class StyleTransformer(_Convs):
    """The content ``(N, 3, H, W)`` in [0, 1] (``H``, ``W`` multiples of 4) and ``S`` ``(N, 100)`` -> ``(N, 3, H, W)``."""

    def __init__(self, weights: Mapping[str, Tensor]) -> None:
        normed = [*_RESIDUAL, *_EXPAND]
        params = [f"style_params/{n}/StyleNorm/{k}" for n in normed for k in ("Conv", "Conv_1")]
        super().__init__(weights, [*_CONTRACT, *normed, *params])
        self.eps = float(weights.get("norm_eps", torch.tensor(1e-5)))

    def norm_params(self, style: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
        """``(gamma, beta)`` of every conditional instance norm for the style vectors ``style`` ``(N, 100)``."""
        out = {}
        s = style.flatten(1)
        for n in (*_RESIDUAL, *_EXPAND):
            beta_w, gamma_w = f"style_params/{n}/StyleNorm/Conv", f"style_params/{n}/StyleNorm/Conv_1"
            gamma = F.linear(s, self.weight(gamma_w).flatten(1), self.bias(gamma_w))
            beta = F.linear(s, self.weight(beta_w).flatten(1), self.bias(beta_w))
            out[n] = (gamma[:, :, None, None], beta[:, :, None, None])
        return out

    def _norm(self, h: Tensor, gamma_beta: tuple[Tensor, Tensor]) -> Tensor:
        gamma, beta = gamma_beta
        var, mean = torch.var_mean(h, dim=(2, 3), keepdim=True, correction=0)
        scale = gamma * torch.rsqrt(var + self.eps)
        return torch.addcmul(beta - mean * scale, h, scale)  # one pass over h (docs/instant.md: faster)

    def forward(self, x: Tensor, style: Tensor | dict[str, tuple[Tensor, Tensor]]) -> Tensor:
        """``style``: the style vectors, or their :meth:`norm_params` (computed once for many images)."""
        p = self.norm_params(style) if isinstance(style, Tensor) else style
        h = self.conv(_CONTRACT[0], F.pad(x, (4, 4, 4, 4), mode="reflect")).relu_()
        for name in _CONTRACT[1:]:
            h = self.conv(name, F.pad(h, (1, 1, 1, 1), mode="reflect"), stride=2).relu_()
        for i in range(0, len(_RESIDUAL), 2):
            a, b = _RESIDUAL[i], _RESIDUAL[i + 1]
            r = self._norm(self.conv(a, F.pad(h, (1, 1, 1, 1), mode="reflect")), p[a]).relu_()
            h = h + self._norm(self.conv(b, F.pad(r, (1, 1, 1, 1), mode="reflect")), p[b])
        for name in _EXPAND[:2]:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = self._norm(self.conv(name, F.pad(h, (1, 1, 1, 1), mode="reflect")), p[name]).relu_()
        h = self.conv(_EXPAND[2], F.pad(h, (4, 4, 4, 4), mode="reflect"))
        return torch.sigmoid(self._norm(h, p[_EXPAND[2]]))
