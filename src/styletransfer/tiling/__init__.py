"""Exact tiled evaluation: the whole image's loss and gradient, one tile's network pass at a time.

:mod:`~styletransfer.tiling.grid` places the tiles (torch-free);
:mod:`~styletransfer.tiling.objective` evaluates the objective over them.
"""

from .grid import TileSizeRounded, check_tile_size, grid, halo, smallest_tile, split, tiled_pixels
from .objective import TiledObjective

__all__ = [
    "TileSizeRounded",
    "TiledObjective",
    "check_tile_size",
    "grid",
    "halo",
    "smallest_tile",
    "split",
    "tiled_pixels",
]
