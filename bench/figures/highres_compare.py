"""Side-by-side figure of the coarse-to-fine results at 512, 1024 and 2048 px.

    python -m bench.figures.highres_compare DIR -o docs/images/highres_compare.png

DIR holds ``tubingen_starry_{512,1024,2048}.png`` from ``bench/benchmarks/highres_run.py``.
Top row: the whole images at the same display size (the look: stroke scale
and style strength).  Bottom row: the same region (a quarter of the width,
around the church tower) at each image's own pixels, upsampled with nearest
neighbours to the same display size (the detail each scale adds).

It also prints, for each size: the seed objective's terms at that size (the
style image loaded at the same size, as the run does: the style strength at
the scale the image lives at), and the mean absolute difference (0..255) of
the image, downsampled to 512 px with Lanczos, from the 512 px result (the
composition and strokes kept).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    args = parser.parse_args(argv)
    images = [Image.open(Path(args.directory) / f"tubingen_starry_{s}.png").convert("RGB") for s in args.sizes]
    fig = Figure(figsize=(5.0 * len(images), 8.4), layout="constrained")
    axes = fig.subplots(2, len(images), squeeze=False)
    for col, (_size, im) in enumerate(zip(args.sizes, images)):
        w, h = im.size
        axes[0, col].imshow(np.asarray(im.resize((512, round(512 * h / w)), Image.LANCZOS)))
        axes[0, col].set_title(f"{w}x{h}, shown at 512 px")
        # The church tower region: x 62%..87%, y 10%..45% of the image.
        box = (round(0.62 * w), round(0.10 * h), round(0.87 * w), round(0.45 * h))
        crop = im.crop(box).resize((512, round(512 * (box[3] - box[1]) / (box[2] - box[0]))), Image.NEAREST)
        axes[1, col].imshow(np.asarray(crop))
        axes[1, col].set_title(f"detail at {w}x{h}'s own pixels")
        for ax in axes[:, col]:
            ax.set_axis_off()
    fig.savefig(args.output, dpi=100)

    from styletransfer.examples import example_path
    from styletransfer.pipeline import final_terms, resolve_settings

    content, style = example_path("tubingen.jpg"), example_path("starry_night.jpg")
    base = np.asarray(images[0], dtype=np.float32)
    print(
        "| size | style | content | TV | total (at its own size) | mean abs. difference from the 512 result, at 512 |"
    )
    print("|---|---|---|---|---|---|")
    for size, im in zip(args.sizes, images):
        terms = final_terms(im, content, style, resolve_settings("fast", size=size, device="cpu"))
        small = np.asarray(im.resize(images[0].size, Image.LANCZOS), dtype=np.float32)
        print(
            f"| {size} | {terms['style']:.3g} | {terms['content']:.3g} | {terms['tv']:.3g} | {terms['total']:.3g} | {np.abs(small - base).mean():.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
