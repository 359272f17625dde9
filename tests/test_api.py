"""The API against the seed's own numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from styletransfer import loss_terms
from styletransfer.errors import OptionError
from styletransfer.pipeline import resolve_device, resolve_settings, stylize_tensor
from styletransfer.presets import PRESETS, TUTORIAL, get_preset


def test_tutorial_preset_is_the_seed() -> None:
    p = get_preset("tutorial")
    assert (p.size, p.steps, p.optimizer, p.lr, p.beta1, p.eps) == (512, 1000, "adam", 0.02, 0.99, 0.1)
    assert (p.style_weight, p.content_weight, p.tv_weight) == (1e-2, 1e4, 30.0)
    assert p.content_layers == ("block5_conv2",) and len(p.style_layers) == 5 and p.init == "content"


def test_every_preset_is_frozen_and_valid() -> None:
    for p in PRESETS.values():
        with pytest.raises(AttributeError):
            p.steps = 1  # type: ignore[misc]
        assert resolve_settings(p, device="cpu").preset == p.sized()


def test_the_default_has_a_budget_per_pixel() -> None:
    fast = get_preset("fast")
    assert fast.steps_size is not None and fast.coarse_size is not None
    for size in (64, 128, 200, 256, 383, 384, 512, 700, 1024):
        cap = resolve_settings("fast", size=size, device="cpu").preset.steps
        first = min(size, fast.coarse_size)
        expected = round(fast.steps * first**2 / fast.steps_size**2)
        assert cap == min(fast.max_steps, max(fast.min_steps, expected))
    caps = {s: resolve_settings("fast", size=s, device="cpu").preset.steps for s in (128, 256, 384, 512, 2048)}
    assert caps == {128: 40, 256: 142, 384: 320, 512: 569, 2048: 569}
    # an explicit cap is kept as given, at every size
    assert resolve_settings("fast", size=128, steps=500, device="cpu").preset.steps == 500
    assert resolve_settings("quality", size=128, device="cpu").preset.steps == get_preset("quality").steps


@pytest.mark.parametrize(
    ("overrides", "option"),
    [
        ({"steps": 0}, "steps"),
        ({"size": 0}, "size"),
        ({"style_weight": float("nan")}, "style_weight"),
        ({"tv_weight": float("inf")}, "tv_weight"),
        ({"lr": -1.0}, "lr"),
    ],
)
def test_impossible_settings_name_the_option_not_a_flag(overrides: dict, option: str) -> None:
    with pytest.raises(OptionError, match=option) as info:
        resolve_settings("tutorial", device="cpu", **overrides)
    assert info.value.option == option and "--" not in str(info.value)
    assert info.value.render(lambda n: "--" + n.replace("_", "-")).startswith("--" + option.replace("_", "-"))


def test_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("nope")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(TypeError, match="unknown preset field"):
        TUTORIAL.with_overrides(colour=1)


def test_loss_of_the_content_image_is_the_seeds(tubingen: Path, starry: Path) -> None:
    # The seed's code scores the Tübingen photo itself at 6.538e8 against Starry Night at 512 px.
    terms = loss_terms(tubingen, tubingen, starry, size=512)
    assert terms["content"] == 0.0
    assert abs(terms["total"] / 6.538e8 - 1) < 1e-3
    assert terms["total"] == pytest.approx(terms["style"] + terms["content"] + terms["tv"])


def test_loss_terms_resize_the_image_and_take_weights(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = tiny_pair
    big = tmp_path / "big.png"
    Image.open(content).resize((128, 96)).save(big)
    a = loss_terms(big, content, style, size=64)
    b = loss_terms(big, content, style, size=64, style_weight=0.0, tv_weight=60.0)
    assert b["style"] == 0.0 and b["tv"] == pytest.approx(2 * a["tv"]) and b["content"] == a["content"]


@pytest.mark.slow
def test_first_three_tutorial_steps_match_the_seed(tubingen: Path, starry: Path) -> None:
    # Losses before each of the first three updates in the seed's own TensorFlow run.
    seed = [6.538e8, 4.235e8, 2.452e8]
    seen: list[float] = []
    settings = resolve_settings("tutorial", steps=3, device="cpu")
    stylize_tensor(tubingen, starry, settings, callback=lambda p: seen.append(p.loss))
    for ours, theirs in zip(seen, seed):
        assert abs(ours / theirs - 1) < 5e-3
