"""Put images side by side with captions: ``python -m bench.figures.side_by_side OUT.png A.png:caption B.png:caption ...``."""

from __future__ import annotations

import sys

from PIL import Image, ImageDraw


def side_by_side(items: list[tuple[str, str]], height: int = 384, pad: int = 8, caption: int = 22) -> Image.Image:
    """Each image scaled to ``height`` pixels, in a row, with its caption above it."""
    images = []
    for path, _ in items:
        im = Image.open(path).convert("RGB")
        images.append(im.resize((round(im.width * height / im.height), height), Image.LANCZOS))
    width = sum(im.width for im in images) + pad * (len(images) + 1)
    sheet = Image.new("RGB", (width, height + caption + 2 * pad), "white")
    draw = ImageDraw.Draw(sheet)
    x = pad
    for im, (_, text) in zip(images, items):
        draw.text((x, pad // 2), text, fill="black")
        sheet.paste(im, (x, caption + pad))
        x += im.width + pad
    return sheet


if __name__ == "__main__":
    out, *specs = sys.argv[1:]
    side_by_side([tuple(s.split(":", 1)) for s in specs]).save(out)  # type: ignore[misc]
