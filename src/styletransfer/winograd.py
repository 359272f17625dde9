"""Winograd convolution F(m x m, 3 x 3) for frozen 3x3 kernels, forward and backward to the input.

VGG19's convolutions are 3x3, stride 1, padding 1, and their weights are
frozen: only the gradient with respect to the *input* is ever needed.  Winograd's
minimal filtering (Lavin & Gray 2015, "Fast Algorithms for Convolutional Neural
Networks") computes an ``m x m`` output tile from an ``a x a`` input tile
(``a = m + 2``) as

    Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A

for each input channel's ``a x a`` tile ``d`` and kernel ``g`` (summed over
input channels), with the 1-D transforms ``B^T`` (``a x a``), ``G`` (``a x 3``)
and ``A^T`` (``m x a``) of :data:`TRANSFORMS`.  This uses ``a^2`` multiplies
per output tile and channel pair instead of ``9 m^2``: 2.25x fewer for
F(2x2, 3x3), 4x fewer for F(4x4, 3x3) and 5.06x fewer for F(6x6, 3x3).

Written with the Kronecker products ``BB = B^T ⊗ B^T`` (``a^2 x a^2``) and
``AA = A^T ⊗ A^T`` (``m^2 x a^2``) acting on tiles flattened row-major, one
layer is three matrix products (:meth:`WinogradConv.apply_tiles`):

1. tiles: the input, padded by 1 on the top and left and by ``m * ceil(H/m) + 1 - H``
   (resp. ``W``) at the bottom and right, cut into ``th x tw`` overlapping
   ``a x a`` tiles at stride ``m`` (``th = ceil(H/m)``, ``tw = ceil(W/m)``),
   ``D[ν, p, c]`` for tile element ``ν``, tile ``p`` and channel ``c``;
2. ``V = BB @ D``, then for each of the ``a^2`` tile elements ``ξ`` one GEMM
   ``M[ξ] = V[ξ] @ U[ξ]`` of ``(tiles x C_in) @ (C_in x C_out)``, with the
   weight transform ``U[ξ] = (G g G^T)[ξ]`` computed once per layer;
3. ``Y = AA @ M``: each tile's ``m x m`` outputs, put back in place and cropped
   to ``H x W``.

The bias is added in the transformed domain: the interpolation point ``x = 1``
(column 1 of ``A^T``) has ``A^T e_1 = (1, ..., 1)``, so adding ``b`` to
``M[ξ = (1, 1)]`` adds ``b`` to every output of the tile.

The gradient of a 3x3 stride-1 pad-1 convolution with respect to its input is
the same convolution of the output gradient with the kernel flipped in both
spatial axes and its input and output channels swapped,
``g'[c, k, i, j] = g[k, c, 2 - i, 2 - j]``; its transform is computed once too,
so :meth:`WinogradConv.apply_tiles` serves both directions.

Tiles are processed in bands of tile rows, so the temporaries stay bounded
(:data:`BAND_BYTES_ONE_THREAD`, :data:`BAND_BYTES`) whatever the image size.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

_Matrix = tuple[tuple[Fraction | int, ...], ...]

_H = Fraction(1, 2)

#: ``(B^T, G, A^T)`` for F(m, 3), keyed by ``m``.  F(2, 3) and F(4, 3) are Lavin
#: and Gray's (interpolation points 0, ±1, ∞ and 0, ±1, ±2, ∞); F(6, 3) uses the
#: points 0, ±1, ±2, ±1/2, ∞.
TRANSFORMS: dict[int, tuple[_Matrix, _Matrix, _Matrix]] = {
    2: (
        ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
        ((1, 0, 0), (_H, _H, _H), (_H, -_H, _H), (0, 0, 1)),
        ((1, 1, 1, 0), (0, 1, -1, -1)),
    ),
    4: (
        (
            (4, 0, -5, 0, 1, 0),
            (0, -4, -4, 1, 1, 0),
            (0, 4, -4, -1, 1, 0),
            (0, -2, -1, 2, 1, 0),
            (0, 2, -1, -2, 1, 0),
            (0, 4, 0, -5, 0, 1),
        ),
        (
            (Fraction(1, 4), 0, 0),
            (Fraction(-1, 6), Fraction(-1, 6), Fraction(-1, 6)),
            (Fraction(-1, 6), Fraction(1, 6), Fraction(-1, 6)),
            (Fraction(1, 24), Fraction(1, 12), Fraction(1, 6)),
            (Fraction(1, 24), Fraction(-1, 12), Fraction(1, 6)),
            (0, 0, 1),
        ),
        ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1)),
    ),
    6: (
        (
            (1, 0, Fraction(-21, 4), 0, Fraction(21, 4), 0, -1, 0),
            (0, 1, 1, Fraction(-17, 4), Fraction(-17, 4), 1, 1, 0),
            (0, -1, 1, Fraction(17, 4), Fraction(-17, 4), -1, 1, 0),
            (0, _H, Fraction(1, 4), Fraction(-5, 2), Fraction(-5, 4), 2, 1, 0),
            (0, -_H, Fraction(1, 4), Fraction(5, 2), Fraction(-5, 4), -2, 1, 0),
            (0, 2, 4, Fraction(-5, 2), -5, _H, 1, 0),
            (0, -2, 4, Fraction(5, 2), -5, -_H, 1, 0),
            (0, -1, 0, Fraction(21, 4), 0, Fraction(-21, 4), 0, 1),
        ),
        (
            (1, 0, 0),
            (Fraction(-2, 9), Fraction(-2, 9), Fraction(-2, 9)),
            (Fraction(-2, 9), Fraction(2, 9), Fraction(-2, 9)),
            (Fraction(1, 90), Fraction(1, 45), Fraction(2, 45)),
            (Fraction(1, 90), Fraction(-1, 45), Fraction(2, 45)),
            (Fraction(32, 45), Fraction(16, 45), Fraction(8, 45)),
            (Fraction(32, 45), Fraction(-16, 45), Fraction(8, 45)),
            (0, 0, 1),
        ),
        (
            (1, 1, 1, 1, 1, 1, 1, 0),
            (0, 1, -1, 2, -2, _H, -_H, 0),
            (0, 1, 1, 4, 4, Fraction(1, 4), Fraction(1, 4), 0),
            (0, 1, -1, 8, -8, Fraction(1, 8), Fraction(-1, 8), 0),
            (0, 1, 1, 16, 16, Fraction(1, 16), Fraction(1, 16), 0),
            (0, 1, -1, 32, -32, Fraction(1, 32), Fraction(-1, 32), 1),
        ),
    ),
}

#: On one thread, a band of tile rows holds about this many bytes of each tile
#: temporary (``D``, ``V``, ``M``), so that they stay in cache ...
BAND_BYTES_ONE_THREAD = 2 << 20
#: ... and on several threads this many: each band costs a few parallel regions,
#: whose barriers are slow on shared cores, but bands much larger than the
#: last-level cache stream every temporary through memory (on an idle 2-core Zen 3
#: with 32 MiB of L3, inside a run and from 128 channels, 8 MiB made an evaluation
#: 1.16x faster than 64 MiB at 512 px and 1.24x at 1024 px; measured:
#: docs/benchmarks.md).
BAND_BYTES = 8 << 20
#: A band has at least this many tiles, so that each GEMM amortises reading ``U``.
BAND_TILES = 128


def _matrix(rows: _Matrix) -> Tensor:
    return torch.tensor([[float(v) for v in row] for row in rows], dtype=torch.float64)


def kernel_transform(weight: Tensor, m: int) -> Tensor:
    """``U[ξ] = (G g G^T)[ξ]`` for every kernel, as ``(a^2, C_in, C_out)`` float32.

    Args:
        weight: ``(C_out, C_in, 3, 3)``.
        m: the output tile side (2, 4 or 6).
    """
    g = _matrix(TRANSFORMS[m][1])
    u = torch.einsum("ai,kcij,bj->abck", g, weight.double(), g)
    a = m + 2
    return u.reshape(a * a, weight.shape[1], weight.shape[0]).float().contiguous()


class WinogradConv:
    """One frozen 3x3 convolution (stride 1, padding 1) computed by F(m x m, 3 x 3).

    Args:
        weight: ``(C_out, C_in, 3, 3)``.
        bias: ``(C_out,)``.
        m: the output tile side: 2, 4 (the default) or 6.

    Attributes:
        forward_u: the transform of ``weight`` (see :func:`kernel_transform`).
        backward_u: the transform of the flipped, channel-swapped kernel, for
            the gradient with respect to the input.
    """

    def __init__(self, weight: Tensor, bias: Tensor, m: int = 4) -> None:
        if m not in TRANSFORMS:
            raise ValueError(f"no Winograd transform F({m}, 3); use one of {sorted(TRANSFORMS)}")
        bt, _, at = TRANSFORMS[m]
        self.m = m
        self.bb = torch.kron(_matrix(bt), _matrix(bt)).float().to(weight.device)
        self.aa = torch.kron(_matrix(at), _matrix(at)).float().to(weight.device)
        self.forward_u = kernel_transform(weight, m)
        self.backward_u = kernel_transform(weight.flip(2, 3).transpose(0, 1), m)
        self.bias = bias.float().contiguous()

    def apply_tiles(self, x: Tensor, u: Tensor, bias: Tensor | None) -> Tensor:
        """The convolution of channels-last ``x`` with the kernels transformed into ``u``.

        Args:
            x: ``(N, H, W, C_in)``, any strides.
            u: ``(a^2, C_in, C_out)``: :attr:`forward_u` or :attr:`backward_u`.
            bias: ``(C_out,)`` or ``None``.

        Returns:
            ``(N, H, W, C_out)``, contiguous.
        """
        m, a = self.m, self.m + 2
        n, h, w, c = x.shape
        k = u.shape[2]
        th, tw = -(-h // m), -(-w // m)
        xp = F.pad(x, (0, 0, 1, m * tw + 1 - w, 1, m * th + 1 - h))
        s_n, s_h, s_w, s_c = xp.stride()
        out = x.new_empty(n, th, m, tw, m, k)
        band_bytes = BAND_BYTES_ONE_THREAD if torch.get_num_threads() == 1 else BAND_BYTES
        band = max(1, max(BAND_TILES, band_bytes // (4 * a * a * max(c, k))) // (n * tw))
        for r0 in range(0, th, band):
            rows = min(band, th - r0)
            p = n * rows * tw
            tiles = xp.as_strided(
                (a, a, n, rows, tw, c), (s_h, s_w, s_n, m * s_h, m * s_w, s_c), xp.storage_offset() + m * r0 * s_h
            )
            v = torch.mm(self.bb, tiles.reshape(a * a, p * c)).view(a * a, p, c)
            mt = torch.bmm(v, u)
            if bias is not None:
                mt[a + 1] += bias
            y = torch.mm(self.aa, mt.view(a * a, p * k))
            out[:, r0 : r0 + rows].copy_(y.view(m, m, n, rows, tw, k).permute(2, 3, 0, 4, 1, 5))
        full = out.view(n, th * m, tw * m, k)
        return full if (th * m, tw * m) == (h, w) else full[:, :h, :w].contiguous()


class _WinogradFunction(torch.autograd.Function):
    """``conv2d(x, weight, bias, padding=1)`` with its input gradient, both by Winograd."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, conv: WinogradConv) -> Tensor:
        ctx.conv = conv
        y = conv.apply_tiles(x.permute(0, 2, 3, 1), conv.forward_u, conv.bias)
        return y.permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        conv: WinogradConv = ctx.conv
        g = conv.apply_tiles(grad.permute(0, 2, 3, 1), conv.backward_u, None)
        return g.permute(0, 3, 1, 2), None


def winograd_conv2d(x: Tensor, conv: WinogradConv) -> Tensor:
    """``F.conv2d(x, weight, bias, padding=1)`` for ``(N, C_in, H, W)`` float32 ``x``, channels-last out.

    Differentiable with respect to ``x`` only (the kernel is frozen).
    """
    out: Tensor = _WinogradFunction.apply(x, conv)  # type: ignore[no-untyped-call]
    return out
