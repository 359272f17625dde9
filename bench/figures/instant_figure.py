"""The README's instant figure: the bundled photo, then the instant preset in three styles and at half strength.

    python -m bench.figures.instant_figure docs/images/instant.jpg

Each picture is ``stylize(..., preset="instant", size=SIZE)`` (the Python API), its time printed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image, ImageDraw

from styletransfer import example_path, stylize

PANELS = (
    ("the photo", None, 1.0),
    ("The Starry Night", "starry_night.jpg", 1.0),
    ("The Starry Night, strength 0.5", "starry_night.jpg", 0.5),
    ("The Scream", "the_scream.jpg", 1.0),
    ("The Shipwreck", "shipwreck.jpg", 1.0),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--size", type=int, default=512, help="the long side each picture is made at")
    parser.add_argument("--thumb", type=int, default=320, help="the long side of each panel in the figure")
    args = parser.parse_args(argv)
    photo = example_path("tubingen.jpg")
    stylize(photo, example_path("starry_night.jpg"), preset="instant", size=64)  # load the networks
    panels = []
    for label, style, strength in PANELS:
        if style is None:
            picture = Image.open(photo).convert("RGB")
        else:
            start = time.perf_counter()
            picture = stylize(photo, example_path(style), preset="instant", size=args.size, strength=strength)
            print(f"{label}: {time.perf_counter() - start:.3f} s at {picture.size[0]}x{picture.size[1]}")
        picture.thumbnail((args.thumb, args.thumb), Image.LANCZOS)
        panels.append((label, picture))
    w, h = panels[0][1].size
    label_h = 22
    sheet = Image.new("RGB", (len(panels) * (w + 6) + 6, h + label_h + 12), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, picture) in enumerate(panels):
        x = 6 + i * (w + 6)
        sheet.paste(picture, (x, 6))
        draw.text((x + 2, h + 10), label, fill="black")
    sheet.save(args.output, quality=88, optimize=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
