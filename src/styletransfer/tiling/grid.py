"""Where the tiles of an image lie: the halo each needs, the pooling grid, the tiles' boxes (torch-free).

A tile is a box of the input image that the network sees whole, and its
*core*, the part whose activations are kept.  The activations at a core
equal the whole image's there when the box reaches :func:`halo` pixels past
the core on every side that is not the image's own edge, and when the box
starts on the pooling grid (:func:`grid`).

The halo, from the layer table: at a tile's inner edge the zero padding is
wrong, and the wrong band grows by one activation at each 3x3 convolution
and halves (rounding up) at each 2x2 pool::

    m <- m + 1          (conv)
    m <- ceil(m / 2)    (pool)

A layer ``l`` with spatial factor ``f_l`` then has ``m_l`` wrong activations,
``m_l f_l`` input pixels, at the edge; the halo is the largest of these over
the layers used, rounded up to the grid.  For the seed's layers (down to
``block5_conv2``): ``m = 6`` at factor 16, a halo of 96 pixels.

The grid is the largest spatial factor of the layers used (16 down to
block5): every box and core boundary lies on it, except the image's own
edges, so the pools group the same pixels in a tile as in the whole image,
and a box that ends at the image's edge drops the same odd rows.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import Notice, OptionError
from ..vgg_layers import LAYER_INDEX, LAYER_NAMES, LAYERS, check_layers


class TileSizeRounded(Notice):
    """``tile_size`` was not a multiple of the pooling grid: the run uses the nearest one."""


def grid(layers: Iterable[str]) -> int:
    """The pooling grid of ``layers``: the largest spatial factor among them (1 for none)."""
    return max((LAYERS[LAYER_INDEX[n]].factor for n in check_layers(layers)), default=1)


def wrong_band(layers: Iterable[str]) -> int:
    """The widest band, in input pixels, that a tile's inner zero padding spoils at any of ``layers``.

    ``max_l m_l f_l`` with ``m_l`` from the module's recursion.
    """
    wanted = set(check_layers(layers))
    if not wanted:
        return 0
    last = max(LAYER_INDEX[n] for n in wanted)
    m, band = 0, 0
    for info in LAYERS[: last + 1]:
        m = m + 1 if info.kind == "conv" else -(-m // 2)
        if info.name in wanted:
            band = max(band, m * info.factor)
    return band


def halo(layers: Iterable[str]) -> int:
    """The halo of a tile for ``layers``: :func:`wrong_band` rounded up to :func:`grid`."""
    names = list(layers)
    g = grid(names)
    return -(-wrong_band(names) // g) * g


def smallest_tile(layers: Iterable[str]) -> int:
    """The smallest tile side for ``layers``: a halo on both sides and one grid step of core."""
    names = list(layers)
    return 2 * halo(names) + grid(names)


def check_tile_size(size: int, layers: Sequence[str]) -> int:
    """``size`` rounded to the nearest multiple of the grid (a :class:`TileSizeRounded` notice if it moved).

    Raises:
        OptionError: on ``tile_size``, when the tile leaves no core inside its
            halos, naming the smallest size that works.
    """
    g = grid(layers)
    rounded = max(g, (size + g // 2) // g * g)
    least = smallest_tile(layers)
    if rounded < least:
        deepest = max(layers, key=LAYER_NAMES.index)
        raise OptionError(
            "tile_size",
            f"{{option}} {size} is too small: the layers in use (down to {deepest}) need a halo of "
            f"{halo(layers)} pixels on each side of a tile; use {{option}} {least} or more",
        )
    if rounded != size:
        warnings.warn(
            TileSizeRounded(
                f"the tile size {size} is not a multiple of the pooling grid ({g} pixels): using {rounded}"
            ),
            stacklevel=2,
        )
    return rounded


@dataclass(frozen=True)
class Span:
    """One tile's extent along one axis: the box ``[start, stop)`` the network sees, its core ``[lo, hi)``."""

    start: int
    stop: int
    lo: int
    hi: int

    def rows(self, factor: int) -> tuple[int, int, int, int]:
        """At a layer of spatial ``factor``: the core's rows in the tile's activations, and in the whole image's.

        ``(a, b, A, B)``: the tile's activations ``[a, b)`` are the image's ``[A, B)``,
        ``A = lo / f`` and ``B = floor(hi / f)`` (``hi`` is on the grid or the image's edge).
        """
        first, last = self.lo // factor, self.hi // factor
        offset = self.start // factor
        return first - offset, last - offset, first, last


def spans(length: int, tile: int, margin: int) -> list[Span]:
    """Tiles of at most ``tile`` pixels along an axis of ``length``, each with ``margin`` pixels of halo.

    The first core is ``[0, tile - margin)`` (no halo before it), each next one
    ``tile - 2 margin`` long, and the last reaches the end (no halo after it);
    one span when ``length <= tile``.  ``tile`` and ``margin`` are multiples of
    the grid and ``tile > 2 margin``.
    """
    if tile <= 2 * margin:
        raise ValueError(f"a tile of {tile} leaves no core inside halos of {margin}")
    if length <= tile:
        return [Span(0, length, 0, length)]
    cuts = [0, tile - margin]
    while length - cuts[-1] > tile - margin:
        cuts.append(cuts[-1] + tile - 2 * margin)
    cuts.append(length)
    return [Span(max(0, lo - margin), min(length, hi + margin), lo, hi) for lo, hi in itertools.pairwise(cuts)]


@dataclass(frozen=True)
class Tile:
    """One tile: its rows and its columns."""

    y: Span
    x: Span


def split(height: int, width: int, tile: int, layers: Sequence[str]) -> list[Tile]:
    """The tiles of an ``height x width`` image, at most ``tile`` pixels a side, row by row.

    Their cores cover the image once; each box holds its core and the
    :func:`halo` ``layers`` need around it, inside the image.
    """
    margin = halo(layers)
    return [Tile(y, x) for y in spans(height, tile, margin) for x in spans(width, tile, margin)]


def tiled_pixels(height: int, width: int, tile: int, layers: Sequence[str]) -> int:
    """The pixels the network sees per pass over the tiles (cores and halos): the work against ``height * width``."""
    margin = halo(layers)
    rows = sum(s.stop - s.start for s in spans(height, tile, margin))
    cols = sum(s.stop - s.start for s in spans(width, tile, margin))
    return rows * cols
