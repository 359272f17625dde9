"""Per-layer style terms of the seed objective (the table in docs/benchmarks.md).

    python -m bench.tuning.style_layers

For the content image, the tutorial preset's 1000-step result, and that result
downsampled 2x and upsampled back, prints each style layer's weighted term
``style_weight / 5 * mean((G_l(x) - G_l(style))^2)`` against Starry Night at 512 px.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.common import ROOT
from styletransfer.examples import example_path
from styletransfer.images import load_img, read_image
from styletransfer.losses import gram_matrix
from styletransfer.presets import SEED_STYLE_LAYERS, TUTORIAL
from styletransfer.vgg import get_vgg, preprocess


def per_layer_style_terms(image: torch.Tensor, style_grams: dict[str, torch.Tensor]) -> dict[str, float]:
    """Each style layer's weighted term for ``image``."""
    feats = get_vgg()(preprocess(image), SEED_STYLE_LAYERS)
    scale = TUTORIAL.style_weight / len(SEED_STYLE_LAYERS)
    return {n: scale * float(((gram_matrix(feats[n]) - style_grams[n]) ** 2).mean()) for n in SEED_STYLE_LAYERS}


def main() -> None:
    content = load_img(example_path("tubingen.jpg"), 512)
    style = load_img(example_path("starry_night.jpg"), 512)
    with torch.no_grad():
        grams = {n: gram_matrix(f) for n, f in get_vgg()(preprocess(style), SEED_STYLE_LAYERS).items()}
        result = read_image(ROOT / "docs/images/tutorial_1000.png")
        half = F.interpolate(result, scale_factor=0.5, mode="bilinear", antialias=True)
        blurred = F.interpolate(half, size=result.shape[-2:], mode="bicubic").clamp(0, 1)
        print("| image | " + " | ".join(SEED_STYLE_LAYERS) + " | sum |")
        print("|---" * (len(SEED_STYLE_LAYERS) + 2) + "|")
        for name, x in [
            ("content image", content),
            ("tutorial, 1000 steps", result),
            ("the same, down 2x and up", blurred),
        ]:
            terms = per_layer_style_terms(x, grams)
            print(f"| {name} | " + " | ".join(f"{v:.3g}" for v in terms.values()) + f" | {sum(terms.values()):.3g} |")


if __name__ == "__main__":
    main()
