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


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray instance for the whole test session (2 CPUs, no dashboard), always shut down."""
    import os

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
