"""A print-size result for the gallery: a reduced view with its tile borders marked, and 1:1 crops across them.

    python -m bench.figures.print_crops print.png --tile 1024 --out docs/images/gallery/print

writes ``OUT-view.jpg`` (the whole image at ``--view`` px wide, the tiles'
core borders drawn as thin lines) and ``OUT-crop.png`` (a ``--crop`` px square
at the image's own pixels around the first corner where four tiles' cores meet,
enlarged ``--zoom`` times with nearest neighbours).

It also prints the seam measure: for each core border, the mean absolute
difference (0..255) between the two pixel rows (or columns) that meet there,
against the median of the same difference 16, 32, 48 and 64 pixels away on
either side.  Those are at the same phase of the network's 16-pixel pooling
grid, to which the tiles are aligned: texture grown in few evaluations
alternates with it (odd rows' jumps can be 1.5x the even rows'), so only
same-phase neighbours compare.  A seam would make the border's jump stand
out; an exact tiling leaves it within the image's own variation.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from PIL import Image, ImageDraw

from styletransfer.presets import FAST
from styletransfer.tiling import split


def core_borders(height: int, width: int, tile: int) -> tuple[list[int], list[int]]:
    """The rows and columns where one tile's core ends and the next one's begins (the default's layers)."""
    tiles = split(height, width, tile, [*FAST.style_layers, *FAST.content_layers])
    rows = sorted({t.y.lo for t in tiles} - {0})
    cols = sorted({t.x.lo for t in tiles} - {0})
    return rows, cols


#: The pooling grid of the default's layers (block5's input is 1/16 of the image).
GRID = 16


def jumps(pixels: np.ndarray, border: int, axis: int) -> tuple[float, float]:
    """Mean |difference| across ``border`` along ``axis``, and its median 16..64 px away on either side (same phase)."""
    diff = np.abs(np.diff(pixels.astype(np.float64), axis=axis)).mean(axis=tuple(a for a in (0, 1, 2) if a != axis))
    at = border - 1  # diff[i] is between pixels i and i + 1
    around = [float(diff[at + k * GRID]) for k in (-4, -3, -2, -1, 1, 2, 3, 4) if 0 <= at + k * GRID < len(diff)]
    return float(diff[at]), statistics.median(around)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image")
    parser.add_argument("--tile", type=int, required=True, help="the run's tile side")
    parser.add_argument("--out", required=True, help="path prefix of the two images")
    parser.add_argument("--view", type=int, default=1024, help="width of the reduced view")
    parser.add_argument("--crop", type=int, default=256, help="side of the 1:1 crop")
    parser.add_argument("--zoom", type=int, default=2)
    args = parser.parse_args(argv)
    image = Image.open(args.image).convert("RGB")
    pixels = np.asarray(image)
    height, width = pixels.shape[:2]
    rows, cols = core_borders(height, width, args.tile)
    for border, axis, name in [(r, 0, "row") for r in rows] + [(c, 1, "column") for c in cols]:
        at, around = jumps(pixels, border, axis)
        print(f"{name} {border}: jump {at:.1f}, its neighbours' median {around:.1f}")
    scale = args.view / width
    view = image.resize((args.view, round(height * scale)), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(view)
    for r in rows:
        draw.line([(0, r * scale), (view.width, r * scale)], fill=(255, 255, 255), width=1)
    for c in cols:
        draw.line([(c * scale, 0), (c * scale, view.height)], fill=(255, 255, 255), width=1)
    view.save(f"{args.out}-view.jpg", quality=88)
    y, x, half = rows[0], cols[0], args.crop // 2
    crop = image.crop((x - half, y - half, x + half, y + half))
    crop.resize((args.crop * args.zoom, args.crop * args.zoom), Image.Resampling.NEAREST).save(f"{args.out}-crop.png")
    print(f"views: {args.out}-view.jpg ({view.width}x{view.height}), {args.out}-crop.png (around row {y}, column {x})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
