"""Each half's Gram distance to both styles, for the two-region example of docs/regions.md.

    python -m bench.tuning.regions [docs/images/gallery/regions-halves.png]

For each half (the masks docs/images/regions/left.png and right.png) and each
style, the mean over the seed's five style layers of
``mean((G_l(x; m) - G_l(style))^2)``, with ``G_l(x; m)`` the guided Gram
matrix of the image in that half (the mask propagated to the layer) and the
style at the image's size (256 px): as the run's own style loss measures it.
The content's row is the starting point.
"""

from __future__ import annotations

import sys

import torch

from styletransfer import example_path
from styletransfer.images import load_img, to_tensor
from styletransfer.losses import gram_matrix, guided_gram
from styletransfer.masks import fit_mask, load_mask, propagate
from styletransfer.presets import SEED_STYLE_LAYERS
from styletransfer.vgg import get_vgg, preprocess

LAYERS = list(SEED_STYLE_LAYERS)


def distances(image: torch.Tensor, mask: torch.Tensor, styles: list[torch.Tensor]) -> list[float]:
    vgg = get_vgg()
    with torch.no_grad():
        fx = vgg(preprocess(image), LAYERS)
        seen = propagate(fit_mask(mask, (image.shape[-2], image.shape[-1])), LAYERS)
        out = []
        for s in styles:
            fs = vgg(preprocess(s), LAYERS)
            d = [float(((guided_gram(fx[n], seen[n]) - gram_matrix(fs[n])) ** 2).mean()) for n in LAYERS]
            out.append(sum(d) / len(d))
    return out


def main() -> None:
    torch.set_num_threads(1)
    path = sys.argv[1] if len(sys.argv) > 1 else "docs/images/gallery/regions-halves.png"
    result = to_tensor(path)
    size = max(result.shape[-2:])
    content = load_img(example_path("tubingen.jpg"), size)
    styles = [load_img(example_path("starry_night.jpg"), size), load_img(example_path("the_scream.jpg"), size)]
    print("| half | image | to Starry Night | to The Scream |")
    print("|---|---|---|---|")
    for half in ("left", "right"):
        mask = load_mask(f"docs/images/regions/{half}.png")
        for name, image in (("content", content), ("result", result)):
            a, b = distances(image, mask, styles)
            print(f"| {half} | {name} | {a:.3e} | {b:.3e} |")


if __name__ == "__main__":
    main()
