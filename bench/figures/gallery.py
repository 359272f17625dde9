"""Make docs/gallery.md: each creative control's effect, with the exact command under each image.

    python -m bench.figures.gallery     # all entries (about 30 min on 2 cores)
    python -m bench.figures.gallery --only blend-70-30

Every image is made by the ``styletransfer`` command shown under it, run from
the repository root.  Small images (256 px, 120 L-BFGS evaluations) keep the
whole gallery cheap; the controls behave the same at 512 px.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT

EX = "src/styletransfer/data/examples"
BASE = ["--size", "256", "--steps", "120", "-q"]
STARRY, SCREAM, SHIPWRECK = f"{EX}/starry_night.jpg", f"{EX}/the_scream.jpg", f"{EX}/shipwreck.jpg"
CONTENT = f"{EX}/tubingen.jpg"
REGIONS = "docs/images/regions"  # the masks and the cut-out subject, made by docs/images/regions/make_masks.py

#: (section, name, caption, style images, extra options)
ENTRIES: list[tuple[str, str, str, list[str], list[str]]] = [
    ("Styles", "starry", "The Starry Night (the reference for the sections below)", [STARRY], []),
    ("Styles", "scream", "The Scream", [SCREAM], []),
    ("Styles", "shipwreck", "The Shipwreck", [SHIPWRECK], []),
    (
        "Several styles",
        "blend-70-30",
        "Starry Night 0.7, Scream 0.3",
        [STARRY, SCREAM],
        ["--style-blend", "0.7", "0.3"],
    ),
    (
        "Several styles",
        "blend-30-70",
        "Starry Night 0.3, Scream 0.7",
        [STARRY, SCREAM],
        ["--style-blend", "0.3", "0.7"],
    ),
    (
        "Preserve colours",
        "colors-luminance",
        "luminance: the result's Y, Tübingen's CbCr",
        [STARRY],
        ["--preserve-colors", "luminance"],
    ),
    (
        "Preserve colours",
        "colors-histogram",
        "histogram: the style recoloured to Tübingen's colour mean and covariance first",
        [STARRY],
        ["--preserve-colors", "histogram"],
    ),
    (
        "Preserve colours",
        "colors-luminance-only",
        "luminance-only (Gatys 2017): optimised on luminance alone, the style's matched to Tübingen's mean and "
        "deviation; Tübingen's CbCr put back",
        [STARRY],
        ["--preserve-colors", "luminance-only"],
    ),
    ("Style scale", "scale-0.5", "--style-scale 0.5: the style at 128 px", [STARRY], ["--style-scale", "0.5"]),
    ("Style scale", "scale-2", "--style-scale 2: the style at 512 px", [STARRY], ["--style-scale", "2"]),
    (
        "Init",
        "init-noise",
        "--init noise (seed 0): 120 evaluations bring back only part of the content; the reference starts from the content",
        [STARRY],
        ["--init", "noise"],
    ),
    (
        "Pooling",
        "pool-avg",
        "--pooling avg (rescaled average pooling); the reference uses max",
        [STARRY],
        ["--pooling", "avg"],
    ),
    (
        "Regions",
        "regions-halves",
        "--masks: Starry Night on the left half, The Scream on the right (docs/images/regions/left.png, right.png)",
        [STARRY, SCREAM],
        ["--masks", f"{REGIONS}/left.png", f"{REGIONS}/right.png"],
    ),
    (
        "Regions",
        "regions-sky",
        "--auto-masks kmeans:3: three colour regions, largest first; the sky (the second) in Starry Night, the "
        "rest in The Scream",
        [SCREAM, STARRY, SCREAM],
        ["--auto-masks", "kmeans:3"],
    ),
    (
        "Regions",
        "regions-subject",
        "--auto-masks alpha on a cut-out subject (docs/images/regions/subject.png): the opaque subject in Starry "
        "Night, the transparent background in The Scream (JPEG output: the alpha is dropped to show both)",
        [STARRY, SCREAM],
        ["--auto-masks", "alpha"],
    ),
    (
        "Regions",
        "regions-protected",
        "a protected region: one mask, black on the yellow house (docs/images/regions/protect_house.png), "
        "which keeps the content",
        [STARRY],
        ["--masks", f"{REGIONS}/protect_house.png"],
    ),
    (
        "Scale mixing",
        "scale-mix",
        "--fine-style: The Scream's fine texture (layers up to block2_conv1) on Starry Night's coarse structure",
        [STARRY],
        ["--fine-style", SCREAM],
    ),
]

#: Entries with their own content image or output format.
CONTENT_OF = {"regions-subject": f"{REGIONS}/subject.png"}
SUFFIX_OF = {"regions-subject": ".jpg"}


def command(name: str, styles: list[str], extra: list[str]) -> list[str]:
    out = f"docs/images/gallery/{name}{SUFFIX_OF.get(name, '.png')}"
    return ["styletransfer", CONTENT_OF.get(name, CONTENT), *styles, "-o", out, *BASE, *extra]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", help="make only these entries")
    parser.add_argument("--doc-only", action="store_true", help="rewrite docs/gallery.md without running")
    args = parser.parse_args(argv)
    (ROOT / "docs/images/gallery").mkdir(parents=True, exist_ok=True)
    exe = str(Path(sys.executable).with_name("styletransfer"))
    for _, name, _, styles, extra in ENTRIES:
        if args.doc_only or (args.only and name not in args.only):
            continue
        cmd = command(name, styles, extra)
        start = time.perf_counter()
        subprocess.run([exe, *cmd[1:]], cwd=ROOT, check=True)
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    lines = [
        "# Gallery: what each control does",
        "",
        "Tübingen in the style of three paintings, made by the commands under each",
        "image (run from the repository root; `python -m bench.figures.gallery` makes them",
        "all). Small images keep the gallery cheap: 256 px, 120 L-BFGS evaluations of",
        "the default `fast` preset. Every other setting is the default, so each image",
        "differs from the Starry Night reference in one control only.",
        "",
    ]
    section = None
    for sec, name, caption, styles, extra in ENTRIES:
        if sec != section:
            lines += [f"## {sec}", ""]
            section = sec
        lines += [
            f"![{caption}](images/gallery/{name}{SUFFIX_OF.get(name, '.png')})",
            "",
            f"*{caption}*",
            "",
            "```bash",
            shlex.join(command(name, styles, extra)),
            "```",
            "",
        ]
    (ROOT / "docs/gallery.md").write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
