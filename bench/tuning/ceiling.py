"""The ceiling of coarse-to-fine for the seed objective at 512 px (docs/benchmarks.md).

    python -m bench.tuning.ceiling            # about 4 minutes on 2 cores (150 evaluations)
    python -m bench.tuning.ceiling --blur 4 --evaluations 60

The best start a coarser scale could hand to the 512 px stage is the answer
itself without its fine detail.  This starts the default's L-BFGS at 512 px
from the tutorial preset's own 1000-step result (docs/images/tutorial_1000.png),
downsampled ``--blur`` times with antialiasing and upsampled back bilinearly,
and counts the evaluations until the seed loss reaches the tutorial's
1000-step loss.  It then compares Gram matrices at 256 px: how far the
tutorial's result, downsampled to 256 px, is from the style at 256 px (what a
256 px stage aims at), against the content image's distance.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

from bench.common import ROOT, TUTORIAL_FINAL_LOSS
from styletransfer.examples import example_path
from styletransfer.images import load_img, read_image
from styletransfer.losses import gram_matrix
from styletransfer.optimize import LbfgsConfig, Progress, Reporter, run_lbfgs
from styletransfer.pipeline import build_objective, resolve_settings
from styletransfer.presets import SEED_STYLE_LAYERS
from styletransfer.vgg import get_vgg, preprocess


def blurred(image: torch.Tensor, factor: float) -> torch.Tensor:
    """``image`` downsampled ``factor`` times (antialiased) and upsampled back (bilinear)."""
    small = F.interpolate(image, scale_factor=1 / factor, mode="bilinear", antialias=True)
    return F.interpolate(small, size=image.shape[-2:], mode="bilinear").clamp(0, 1)


def relative_gram_distances(image: torch.Tensor, style: torch.Tensor) -> list[float]:
    """``|G_l(image) - G_l(style)|_F / |G_l(style)|_F`` for each of the seed's style layers."""
    vgg = get_vgg()
    with torch.no_grad():
        a = vgg(preprocess(image), SEED_STYLE_LAYERS)
        b = vgg(preprocess(style), SEED_STYLE_LAYERS)
    return [float((gram_matrix(a[n]) - gram_matrix(b[n])).norm() / gram_matrix(b[n]).norm()) for n in SEED_STYLE_LAYERS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blur", type=float, default=2.0, help="the downsampling factor of the start (default 2)")
    parser.add_argument("--evaluations", type=int, default=150, help="the most evaluations at 512 px")
    args = parser.parse_args(argv)

    content = load_img(example_path("tubingen.jpg"), 512)
    style = load_img(example_path("starry_night.jpg"), 512)
    answer = read_image(ROOT / "docs/images/tutorial_1000.png")
    settings = resolve_settings("fast", device="cpu")
    objective = build_objective(settings, content, [style])
    reached: list[tuple[int, float]] = []
    curve: list[tuple[int, float]] = []

    def on_step(p: Progress) -> None:
        curve.append((p.step, p.loss))
        if p.loss <= TUTORIAL_FINAL_LOSS and not reached:
            reached.append((p.step, p.elapsed))

    start = blurred(answer, args.blur)
    p = settings.preset
    t = time.perf_counter()
    run_lbfgs(
        objective,
        start,
        args.evaluations,
        Reporter(args.evaluations, on_step),
        LbfgsConfig(lr=p.lr, history=p.history, tv_eps=p.tv_eps),
    )
    wall = time.perf_counter() - t
    print(f"start: the tutorial's 1000-step result blurred {args.blur:g}x; seed loss {curve[0][1]:.4g}")
    print("loss curve (evaluation: loss):", ", ".join(f"{s}: {v:.3g}" for s, v in curve if s % 10 == 0))
    if reached:
        step, seconds = reached[0]
        print(f"reached the tutorial's loss {TUTORIAL_FINAL_LOSS:.4g} at evaluation {step}, after {seconds:.0f} s")
    else:
        print(
            f"did not reach the tutorial's loss {TUTORIAL_FINAL_LOSS:.4g} in {args.evaluations} evaluations ({wall:.0f} s)"
        )

    content_256 = load_img(example_path("tubingen.jpg"), 256)
    style_256 = load_img(example_path("starry_night.jpg"), 256)
    answer_256 = F.interpolate(answer, size=content_256.shape[-2:], mode="bilinear", antialias=True)
    print("\nGram distance to the style at 256 px, |G(x) - G(style)| / |G(style)|:")
    print("| image at 256 px | " + " | ".join(SEED_STYLE_LAYERS) + " |")
    print("|---" * (len(SEED_STYLE_LAYERS) + 1) + "|")
    for name, image in [("tutorial result, downsampled", answer_256), ("content image", content_256)]:
        print(f"| {name} | " + " | ".join(f"{d:.2f}" for d in relative_gram_distances(image, style_256)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
