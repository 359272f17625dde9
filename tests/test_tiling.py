"""Tiled evaluation against the untiled objective: the same loss terms and gradient, in fp32, to 1e-5 relative."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import pytest
import torch
from torch import Tensor

from styletransfer.errors import OptionError
from styletransfer.losses import Objective, Weights
from styletransfer.presets import SEED_CONTENT_LAYERS, SEED_STYLE_LAYERS
from styletransfer.tiling import TiledObjective, TileSizeRounded, check_tile_size, grid, halo, smallest_tile, split
from styletransfer.tiling.grid import spans, wrong_band
from styletransfer.vgg import get_vgg

#: Exactness is tiling's alone: see conftest's ``standard_convolution``.
pytestmark = pytest.mark.usefixtures("standard_convolution")

RTOL = 1e-5
SEED_LAYERS = [*SEED_STYLE_LAYERS, *SEED_CONTENT_LAYERS]
SHALLOW = {"style_layers": ("block1_conv1", "block2_conv1", "block3_conv1"), "content_layers": ("block3_conv2",)}


def test_halo_follows_the_layer_table() -> None:
    # conv: m + 1; pool: ceil(m / 2); band = m * factor
    assert (wrong_band(["block1_conv1"]), halo(["block1_conv1"]), grid(["block1_conv1"])) == (1, 1, 1)
    assert (wrong_band(["block1_pool"]), grid(["block1_pool"])) == (2, 2)  # 2 convs, pooled to 1, at factor 2
    assert wrong_band(["block2_conv1"]) == 4  # 2 -> pool 1 -> conv 2, at factor 2
    assert wrong_band(["block5_conv1"]) == 80  # the "about 78", on the 16 grid
    assert (wrong_band(SEED_LAYERS), halo(SEED_LAYERS), grid(SEED_LAYERS)) == (96, 96, 16)
    assert smallest_tile(SEED_LAYERS) == 2 * 96 + 16


@pytest.mark.parametrize("length", [1, 100, 208, 209, 1000, 3072, 4097])
def test_spans_cover_each_pixel_once_on_the_grid(length: int) -> None:
    tile, margin = 208, 96
    found = spans(length, tile, margin)
    assert found[0].lo == 0 and found[-1].hi == length
    for a, b in itertools.pairwise(found):
        assert a.hi == b.lo and a.hi % 16 == 0
    for s in found:
        assert s.stop - s.start <= tile and s.start % 16 == 0
        assert s.start == max(0, s.lo - margin) and s.stop == min(length, s.hi + margin)


def test_tile_size_is_rounded_to_the_grid_with_a_notice() -> None:
    with pytest.warns(TileSizeRounded, match="the tile size 1000 .* using 1008"):
        assert check_tile_size(1000, SEED_LAYERS) == 1008
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_tile_size(1024, SEED_LAYERS) == 1024


def test_a_tile_too_small_for_its_halo_names_the_smallest_that_works() -> None:
    with pytest.raises(OptionError) as err:
        check_tile_size(190, SEED_LAYERS)
    assert err.value.option == "tile_size"
    message = err.value.render(lambda name: "--" + name.replace("_", "-"))
    assert "--tile-size 190 is too small" in message and "--tile-size 208 or more" in message
    assert "\n" not in message


def _compare(untiled: Objective, tiled: TiledObjective, x: Tensor) -> dict[str, float]:
    """Each term's relative difference and the gradient's (``|g_t - g| / |g|``)."""
    found = []
    for objective in (untiled, tiled):
        image = x.clone().requires_grad_(True)
        terms = objective.terms(image)
        (grad,) = torch.autograd.grad(terms["style"] + terms["content"] + terms["tv"], image)
        found.append(({k: float(v.detach()) for k, v in terms.items()}, grad))
    (a, ga), (b, gb) = found
    out = {k: abs(a[k] - b[k]) / max(abs(a[k]), 1e-30) for k in a}
    out["grad"] = float((ga - gb).norm() / ga.norm())
    return out


def _pair(content: Tensor, style: Any, tile: int, **kwargs: Any) -> tuple[Objective, TiledObjective]:
    vgg = get_vgg()
    options: dict[str, Any] = {
        "weights": Weights(),
        "content_layers": SEED_CONTENT_LAYERS,
        "style_layers": SEED_STYLE_LAYERS,
        **kwargs,
    }
    return Objective(vgg, content, style, **options), TiledObjective(vgg, content, style, tile=tile, **options)


def _exact(diff: dict[str, float]) -> None:
    assert max(diff.values()) < RTOL, diff


def test_odd_size_many_tiles_seed_layers() -> None:
    torch.manual_seed(0)
    c, s, x = torch.rand(1, 3, 261, 347), torch.rand(1, 3, 230, 301), torch.rand(1, 3, 261, 347)
    untiled, tiled = _pair(c, s, 256)
    assert len(split(261, 347, 256, SEED_LAYERS)) == 6
    for n in SEED_STYLE_LAYERS:  # the style targets, tiled too
        torch.testing.assert_close(tiled.style_targets[n], untiled.style_targets[n], rtol=RTOL, atol=0)
    torch.testing.assert_close(tiled.content_targets["block5_conv2"], untiled.content_targets["block5_conv2"])
    _exact(_compare(untiled, tiled, x))


def test_one_tile_is_the_untiled_objective() -> None:
    torch.manual_seed(1)
    c, s, x = torch.rand(1, 3, 97, 130), torch.rand(1, 3, 80, 80), torch.rand(1, 3, 97, 130)
    untiled, tiled = _pair(c, s, 512)
    assert len(split(97, 130, 512, SEED_LAYERS)) == 1
    _exact(_compare(untiled, tiled, x))


def test_a_tile_smaller_than_its_halo() -> None:
    torch.manual_seed(2)
    layers = [*SHALLOW["style_layers"], *SHALLOW["content_layers"]]
    tile = smallest_tile(layers)  # one grid step of core between two halos
    assert tile - 2 * halo(layers) < halo(layers)
    c, s, x = torch.rand(1, 3, 60, 50), torch.rand(1, 3, 64, 50), torch.rand(1, 3, 60, 50)
    untiled, tiled = _pair(c, s, tile, **SHALLOW)
    assert len(split(60, 50, tile, layers)) == 7 * 5
    _exact(_compare(untiled, tiled, x))


def test_masks_and_several_styles() -> None:
    torch.manual_seed(3)
    h, w = 150, 203
    c, x = torch.rand(1, 3, h, w), torch.rand(1, 3, h, w)
    styles = [torch.rand(1, 3, 120, 160), torch.rand(1, 3, 140, 100)]
    left = torch.zeros(1, 1, h, w)
    left[..., : w // 2] = 1.0
    left[..., w // 2 - 10 : w // 2 + 10] = 0.5  # a soft border
    style_mask = torch.zeros(1, 1, 140, 100)
    style_mask[..., 30:, :] = 1.0
    untiled, tiled = _pair(
        c,
        styles,
        192,
        style_blend=(1.0, 3.0),
        style_layer_weights=(1.0, 0.5, 2.0),
        masks=[left, 1.0 - left],
        style_masks=[None, style_mask],
        **SHALLOW,
    )
    assert tiled.regions is not None and len(tiled.regions) == 2
    _exact(_compare(untiled, tiled, x))


@pytest.mark.parametrize("mode", ["simple", "inside"])
def test_one_mask_for_a_blend(mode: str) -> None:
    torch.manual_seed(4)
    h, w = 120, 99
    c, x = torch.rand(1, 3, h, w), torch.rand(1, 3, h, w)
    mask = torch.linspace(0, 1, w).expand(1, 1, h, w).contiguous()
    untiled, tiled = _pair(c, [torch.rand(1, 3, 90, 90)] * 2, 160, masks=[mask], mask_mode=mode, **SHALLOW)
    _exact(_compare(untiled, tiled, x))


def test_avg_pooling_seed_layers() -> None:
    torch.manual_seed(5)
    c, s, x = torch.rand(1, 3, 230, 170), torch.rand(1, 3, 200, 200), torch.rand(1, 3, 230, 170)
    untiled, tiled = _pair(c, s, 208, pooling="avg")
    assert len(split(230, 170, 208, SEED_LAYERS)) == 3
    _exact(_compare(untiled, tiled, x))


def test_no_content_layers_and_no_style_layers() -> None:
    torch.manual_seed(6)
    c, s, x = torch.rand(1, 3, 60, 75), torch.rand(1, 3, 50, 50), torch.rand(1, 3, 60, 75)
    untiled, tiled = _pair(c, s, 48, style_layers=("block1_conv2", "block2_conv2"), content_layers=())
    _exact(_compare(untiled, tiled, x))
    untiled, tiled = _pair(c, s, 48, style_layers=(), content_layers=("block2_conv2",))
    _exact({k: v for k, v in _compare(untiled, tiled, x).items() if k != "style"})


def test_terms_without_gradients_and_a_batch_refused() -> None:
    torch.manual_seed(7)
    c, s = torch.rand(1, 3, 64, 80), torch.rand(1, 3, 50, 50)
    untiled, tiled = _pair(c, s, 48, **SHALLOW)
    with torch.no_grad():
        a, b = untiled.terms(c), tiled.terms(c)
    assert float(b["content"]) == 0.0
    torch.testing.assert_close(b["style"], a["style"], rtol=RTOL, atol=0)
    with pytest.raises(ValueError, match="one image"):
        tiled.terms(torch.rand(2, 3, 64, 80))


def test_bf16_runs_tiled_close_to_untiled() -> None:
    torch.manual_seed(8)
    c, s, x = torch.rand(1, 3, 64, 80), torch.rand(1, 3, 50, 50), torch.rand(1, 3, 64, 80)
    untiled, tiled = _pair(c, s, 48, precision="bf16", **SHALLOW)
    diff = _compare(untiled, tiled, x)
    assert max(diff.values()) < 2e-2, diff  # bf16 rounds each tile's activations its own way: close, not exact
