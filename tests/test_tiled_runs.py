"""Whole runs in tiles: the same per-step losses as untiled, through the API and jobs, with the controls that change the objective."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from styletransfer import api, make_job
from styletransfer.cli import main
from styletransfer.optimize import Progress

#: Exactness is tiling's alone: see conftest's ``standard_convolution``.
pytestmark = pytest.mark.usefixtures("standard_convolution")

SHALLOW: dict[str, Any] = {
    "style_layers": ["block1_conv1", "block2_conv1", "block3_conv1"],
    "content_layers": ["block3_conv2"],
}


def _losses(content: Path, style: Path, **options: Any) -> list[tuple[float, float, float]]:
    seen: list[tuple[float, float, float]] = []

    def hear(p: Progress) -> None:
        seen.append((p.style, p.content, p.tv))

    api.stylize(content, style, device="cpu", precision="fp32", callback=hear, **options)
    return seen


def _same(a: list[tuple[float, float, float]], b: list[tuple[float, float, float]], rtol: float) -> None:
    assert len(a) == len(b) > 0
    for step, (x, y) in enumerate(zip(a, b)):
        for u, v in zip(x, y):
            assert abs(u - v) <= rtol * abs(u), (step, x, y)


@pytest.fixture
def pair(tmp_path: Path, tubingen: Path, starry: Path) -> tuple[Path, Path]:
    """A 160x120 content and a 128x100 style."""
    c, s = tmp_path / "content.png", tmp_path / "style.png"
    Image.open(tubingen).resize((160, 120), Image.BILINEAR).save(c)
    Image.open(starry).resize((128, 100), Image.BILINEAR).save(s)
    return c, s


def test_the_tutorial_preset_gives_the_same_losses_in_tiles(pair: tuple[Path, Path]) -> None:
    content, style = pair
    options = {"preset": "tutorial", "size": 160, "steps": 4}
    tiled = _losses(content, style, **options, tile_size=80, **SHALLOW)  # cheap layers: halo 16, 6 tiles
    _same(_losses(content, style, **options, **SHALLOW), tiled, 1e-5)
    assert len(tiled) == 4


def test_the_tutorial_preset_with_its_own_layers_in_tiles(pair: tuple[Path, Path]) -> None:
    content, style = pair
    options = {"preset": "tutorial", "size": 300, "steps": 2}  # 300x225 in 2 tiles of 256 (halo 96)
    _same(_losses(content, style, **options), _losses(content, style, **options, tile_size=256), 1e-5)


def test_colours_style_scale_avg_pooling_and_masks_in_tiles(pair: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = pair
    mask = tmp_path / "mask.png"
    Image.new("L", (160, 120), 0).save(mask)
    half = Image.open(mask)
    half.paste(255, (0, 0, 80, 120))
    half.save(mask)
    options = {
        "preset": "fast",
        "size": 160,
        "steps": 3,
        "preserve_colors": "luminance-only",
        "style_scale": 0.75,
        "pooling": "avg",
        "masks": [str(mask), str(mask)],
        **SHALLOW,
    }
    two = [style, style]
    whole = _losses(content, two, **options)  # type: ignore[arg-type]
    tiled = _losses(content, two, **options, tile_size=96)  # type: ignore[arg-type]
    _same(whole, tiled, 1e-4)  # L-BFGS: three steps, the same line searches


def test_a_job_records_its_tile_size_and_rerun_repeats_it(pair: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = pair
    job = make_job(content, style, tmp_path / "o.png", size=96, steps=2, tile_size=56, manifest=True, **SHALLOW)
    assert job.options["tile_size"] == 56 and json.loads(job.to_json())["options"]["tile_size"] == 56
    out = tmp_path / "o.png"
    argv = [str(content), str(style), "-o", str(out), "--size", "96", "--steps", "2", "--tile-size", "56"]
    argv += ["--style-layers", *SHALLOW["style_layers"], "--content-layers", *SHALLOW["content_layers"]]
    assert main([*argv, "--manifest", "--device", "cpu", "--quiet"]) == 0
    manifest = json.loads(out.with_name(out.name + ".json").read_text())
    assert manifest["settings"]["tile_size"] == 56
    again = tmp_path / "again.png"
    assert main(["rerun", str(out.with_name(out.name + ".json")), "-o", str(again), "--quiet"]) == 0
    assert Image.open(again).tobytes() == Image.open(out).tobytes()


def test_a_tiled_run_shares_no_batch(pair: tuple[Path, Path]) -> None:
    from styletransfer.pipeline import batch_key, decode_inputs, resolve_settings

    content, style = pair
    inputs = decode_inputs(content, [style], "content")
    layers = {k: tuple(v) for k, v in SHALLOW.items()}
    assert batch_key(inputs, resolve_settings("fast", size=160, tile_size=96, device="cpu", **layers)) is None
    assert batch_key(inputs, resolve_settings("fast", size=160, device="cpu", **layers)) is not None
    one_tile = resolve_settings("fast", size=96, tile_size=96, device="cpu", **layers)  # fits in one tile: whole
    assert batch_key(inputs, one_tile) is not None
