"""Shared fixtures: tiny images, the bundled examples, a local Ray cluster and the studio's test clients."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture
def tiny_pair(tmp_path: Path, tubingen: Path, starry: Path) -> tuple[Path, Path]:
    """A 64x48 content PNG and a 64x40 style PNG."""
    c, s = tmp_path / "content.png", tmp_path / "style.png"
    Image.open(tubingen).resize((64, 48), Image.BILINEAR).save(c)
    Image.open(starry).resize((64, 40), Image.BILINEAR).save(s)
    return c, s


@pytest.fixture
def photos(tmp_path: Path, tubingen: Path, starry: Path) -> tuple[list[Path], Path]:
    """Four 32x24 crops of Tübingen and a 32x26 Starry Night: a batch that runs in seconds."""
    paths = []
    with Image.open(tubingen) as im:
        for i in range(4):
            p = tmp_path / f"p{i}.png"
            im.crop((40 * i, 20 * i, 300 + 40 * i, 215 + 20 * i)).resize((32, 24), Image.BILINEAR).save(p)
            paths.append(p)
    style = tmp_path / "style.png"
    with Image.open(starry) as im:
        im.resize((32, 26), Image.BILINEAR).save(style)
    return paths, style


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for a test module (2 CPUs, no dashboard), always shut down."""
    import os

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    """A studio's test client (the web extra): jobs run."""
    from tests.web_client import studio_client

    yield from studio_client(tmp_path)


@pytest.fixture
def paused(tmp_path: Path) -> Iterator[Any]:
    """A studio's test client whose jobs stay queued (no runner): the queue's own behaviour."""
    from tests.web_client import studio_client

    yield from studio_client(tmp_path, run_jobs=False)


#: Debian's Chromium, which the browser tests drive (Playwright's own browser download is not used).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through Playwright, one per test module; skipped when either is missing."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread for a module: the machine is shared, and two threads on a busy 2-core CPU are slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def standard_convolution(monkeypatch: pytest.MonkeyPatch) -> None:
    """The network without Winograd layers, whatever the thread count.

    For tests of tiling's exactness: Winograd rounds each output by its place in
    a 4x4 output tile, which a tile's offset moves, so a tiled and a whole
    evaluation would differ at fp32's rounding level (amplified in the gradient
    by ReLU and max-pool near-ties) and not only by what tiling does.
    Winograd's own agreement is tests/test_winograd.py's.
    """
    from styletransfer import vgg

    monkeypatch.setattr(vgg, "WINOGRAD_MIN_CHANNELS", {})
