"""The varied set's figure: one row per pair, its photo and style, then each preset's result with its loss and time.

    python -m bench.figures.pairs_figure OUT.png --size 384 --rows fast.json quality.json --out bench/out/pairs

``--rows`` are files that ``bench/benchmarks/pairs.py --json`` wrote (any presets; a row
names its pair and, through its image file, its preset). Each result cell is
captioned with the preset, the seed loss of its saved PNG as a multiple of the
tutorial preset's 1000-step loss, its evaluations and its wall time. The
tutorial's own images (written by ``pairs.py`` when it measures a reference,
``PAIR_SIZE_tutorial.png``) get their column when present, captioned from
``bench/data/pairs_reference.json``. A pair with no image for a preset shows an
empty cell that says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from bench.benchmarks.pairs import PAIRS, TRANSFORMS, load_reference, pair_images
from bench.common import OUT, SHARED_IMAGES
from styletransfer.images import save_image

CELL = 192  # the long side of every cell, pixels
CAPTION = 26  # two lines of caption above each cell


def cell(path: Path | None, caption: str) -> Image.Image:
    """An image scaled into a ``CELL``-wide box with its caption above, or an empty box that says why."""
    box = Image.new("RGB", (CELL, CELL * 3 // 4 + CAPTION), "white")
    draw = ImageDraw.Draw(box)
    for i, line in enumerate(caption.split("\n")[:2]):
        draw.text((2, 1 + 12 * i), line, fill="black")
    if path is not None and path.exists():
        im = Image.open(path).convert("RGB")
        im.thumbnail((CELL, CELL * 3 // 4), Image.LANCZOS)
        box.paste(im, (0, CAPTION))
    else:
        draw.text((8, CAPTION + 40), "not run", fill="gray")
    return box


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--rows", type=Path, nargs="+", required=True, help="JSON rows written by pairs.py --json")
    parser.add_argument("--presets", nargs="+", default=["fast", "quality"], help="result columns, in order")
    parser.add_argument("--out", type=Path, default=OUT / "pairs", help="pairs.py's --out")
    parser.add_argument("--images", type=Path, default=SHARED_IMAGES)
    args = parser.parse_args(argv)

    rows: dict[tuple[str, str], dict] = {}
    for f in args.rows:
        for r in json.loads(f.read_text()):
            if r.get("size", args.size) == args.size:
                rows[(r["pair"], r.get("preset", "fast"))] = r
    ref = load_reference()
    lines = []
    for pair in PAIRS:
        content, style = pair_images(pair, args.images, args.size)
        inputs = args.out / f"{pair.name}_{args.size}_inputs"
        inputs.mkdir(parents=True, exist_ok=True)
        save_image(content, inputs / "content.png")
        save_image(style, inputs / "style.png")
        cells = [
            cell(
                inputs / "content.png",
                f"{pair.name} ({pair.set})\n{'the photo' if pair.transform == 'photo' else pair.transform + ' photo'}",
            ),
            cell(inputs / "style.png", f"style\n{pair.style.rsplit('.', 1)[0]}"),
        ]
        tutorial = ref.get(f"{pair.name}@{args.size}")
        for preset in args.presets:
            r = rows.get((pair.name, preset))
            if r is None or tutorial is None:
                cells.append(cell(None, f"{preset}\n-"))
                continue
            text = f"{preset}: {r['loss'] / tutorial['loss']:.3f}x\n{r['evaluations']} ev, {r['wall_s']:.0f} s"
            cells.append(cell(args.out / f"{pair.name}_{args.size}_{preset}.png", text))
        t_path = args.out / f"{pair.name}_{args.size}_tutorial.png"
        text = "tutorial: 1.000x\n" + (f"1000 steps, {tutorial['wall_s']:.0f} s" if tutorial else "no reference")
        cells.append(cell(t_path if tutorial else None, text))
        line = Image.new("RGB", (sum(c.width for c in cells) + 4 * len(cells), cells[0].height), "white")
        for i, c in enumerate(cells):
            line.paste(c, (i * (CELL + 4), 0))
        lines.append(line)
    sheet = Image.new("RGB", (max(x.width for x in lines), sum(x.height + 4 for x in lines)), "white")
    for i, line in enumerate(lines):
        sheet.paste(line, (0, i * (line.height + 4)))
    sheet.save(args.output)
    print(
        f"wrote {args.output} ({len(lines)} pairs, {sheet.width}x{sheet.height}); transforms: {', '.join(TRANSFORMS)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
