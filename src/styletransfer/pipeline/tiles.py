"""Which scales of a run are evaluated in tiles, and of what side (:mod:`styletransfer.tiling`)."""

from __future__ import annotations

from dataclasses import replace

from .. import memory
from .inputs import Inputs, shape_at
from .settings import Settings, stage_sizes


def run_tiles(inputs: Inputs, settings: Settings, available: int | None = None) -> list[int | None]:
    """Each scale's tile side (``None``: whole), coarse to fine: :func:`~styletransfer.memory.scale_tiles`.

    ``available``: free bytes on the run's device (default: what the system says now).
    """
    shapes = [shape_at(inputs.content_pixels, size) for size in stage_sizes(settings.preset)]
    free = memory.available_bytes(settings.device) if available is None else available
    return memory.scale_tiles(settings.preset, shapes, free)


def tile_at(inputs: Inputs, settings: Settings, size: int) -> int | None:
    """The tile side of the scale of long side ``size`` (``None``: whole; a size off the run's scales: as the last)."""
    sizes = stage_sizes(settings.preset)
    tiles = run_tiles(inputs, settings)
    return tiles[sizes.index(size)] if size in sizes else tiles[-1]


def with_planned_tiles(inputs: Inputs, settings: Settings, available: int | None = None) -> Settings:
    """``settings`` with the tile side the memory guard plans (:func:`run_tiles`) as its ``tile_size``.

    Unchanged when ``tile_size`` is given or nothing needs tiles.  A job's
    settings go through here, so its manifest records the tiles it ran in
    and ``rerun`` repeats them on any machine.
    """
    if settings.preset.tile_size is not None:
        return settings
    planned = [t for t in run_tiles(inputs, settings, available) if t is not None]
    if not planned:
        return settings
    return replace(settings, preset=replace(settings.preset, tile_size=planned[-1]))
