"""The seed's own TensorFlow code (tests/seed_tf.py) against our `tutorial` preset.

Needs the `bench` extra (TensorFlow); skipped without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("tensorflow")

from styletransfer.pipeline import resolve_settings, stylize_tensor
from tests import seed_tf


def test_first_three_steps_agree_with_the_tutorial_preset(tubingen: Path, starry: Path) -> None:
    ours: list[float] = []
    settings = resolve_settings("tutorial", steps=3, size=64, device="cpu")
    stylize_tensor(tubingen, starry, settings, callback=lambda p: ours.append(p.loss))
    result = seed_tf.SeedRun(tubingen, starry, max_dim=64).run(3)
    assert len(result["losses"]) == 3 and len(result["step_s"]) == 2
    for theirs, mine in zip(result["losses"], ours, strict=True):
        assert abs(theirs / mine - 1) < 1e-3


def test_load_img_matches_ours(tubingen: Path) -> None:
    from styletransfer.images import load_img

    theirs = seed_tf.load_img(tubingen, 64).numpy()
    mine = load_img(tubingen, 64).permute(0, 2, 3, 1).numpy()
    assert theirs.shape == mine.shape == (1, 48, 64, 3)
    assert np.abs(theirs - mine).max() < 2e-3


@pytest.mark.filterwarnings(
    "ignore:The structure of `inputs`"
)  # the seed's Model([vgg.input], ...) called with a tensor
def test_network_matches_ours() -> None:
    from styletransfer.vgg import get_vgg, preprocess

    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 48)
    mine = get_vgg(device="cpu")(preprocess(image), ["block3_conv1"])["block3_conv1"]
    extractor = seed_tf.vgg_layers(["block3_conv1"])
    preprocessed = seed_tf.tf.keras.applications.vgg19.preprocess_input(image.permute(0, 2, 3, 1).numpy() * 255.0)
    theirs = np.asarray(extractor(preprocessed))
    assert np.allclose(theirs, mine.permute(0, 2, 3, 1).numpy(), rtol=1e-4, atol=1e-3 * float(mine.abs().max()))


def test_tensor_to_image_truncates_like_the_seed() -> None:
    image = seed_tf.tensor_to_image(np.full((1, 2, 2, 3), 0.999, dtype=np.float32))
    assert image.size == (2, 2) and image.getpixel((0, 0)) == (254, 254, 254)
