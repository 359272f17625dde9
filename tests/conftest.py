"""Shared fixtures: tiny images and the bundled examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styletransfer.examples import example_path


@pytest.fixture(scope="session")
def tubingen() -> Path:
    return example_path("tubingen.jpg")


@pytest.fixture(scope="session")
def starry() -> Path:
    return example_path("starry_night.jpg")


@pytest.fixture()
def tiny_pair(tmp_path: Path, tubingen: Path, starry: Path) -> tuple[Path, Path]:
    """A 64x48 content PNG and a 64x40 style PNG."""
    c, s = tmp_path / "content.png", tmp_path / "style.png"
    Image.open(tubingen).resize((64, 48), Image.BILINEAR).save(c)
    Image.open(starry).resize((64, 40), Image.BILINEAR).save(s)
    return c, s


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
