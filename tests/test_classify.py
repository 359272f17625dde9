"""Top-5 classification with a full Keras .h5 file written by the test in Keras' layout."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from styletransfer import classifier
from styletransfer.cli import main
from styletransfer.images import load_img, resize
from styletransfer.vgg import WeightsError, get_vgg, load_weights, preprocess
from tests.test_vgg import _write_keras_h5

HIDDEN = 8  # the test's fc1/fc2 width (Keras' file: 4096)
CLASS = 3
SCALE = 0.01


def _pool5(image: Path) -> torch.Tensor:
    """block5_pool of the seed's classification input, (C, H, W)."""
    x = resize(preprocess(load_img(image, 512)), (224, 224))
    with torch.no_grad():
        return get_vgg()(x, ["block5_pool"])["block5_pool"][0]


@pytest.fixture(scope="module")
def position(tubingen: Path) -> tuple[int, int, int]:
    """The (h, w, c) of Tübingen's strongest block5_pool activation: the one fc1 reads."""
    pool = _pool5(tubingen)
    c, h, w = np.unravel_index(int(pool.argmax()), tuple(pool.shape))
    return int(h), int(w), int(c)


@pytest.fixture(scope="module")
def full_h5(tmp_path_factory: pytest.TempPathFactory, position: tuple[int, int, int]) -> Path:
    """Shipped convolutions (float16) plus a classifier where only block5_pool[h, w, c] matters.

    fc1 unit 0 = SCALE * pool[h, w, c] (Keras' (H, W, C) flatten order), fc2 passes unit 0
    through, and the class CLASS gets logit fc2[0]: every other logit is 0.
    """
    pytest.importorskip("h5py")
    H, W, C = position
    weights = {
        n: (w.permute(2, 3, 1, 0).numpy().astype(np.float16), b.numpy().astype(np.float16))
        for n, (w, b) in load_weights(None).items()
    }
    fc1 = np.zeros((7 * 7 * 512, HIDDEN), np.float32)
    fc1[(H * 7 + W) * 512 + C, 0] = SCALE
    fc2 = np.zeros((HIDDEN, HIDDEN), np.float32)
    fc2[0, 0] = 1.0
    pred = np.zeros((HIDDEN, 1000), np.float32)
    pred[0, CLASS] = 1.0
    weights["fc1"] = (fc1, np.zeros(HIDDEN, np.float32))
    weights["fc2"] = (fc2, np.zeros(HIDDEN, np.float32))
    weights["predictions"] = (pred, np.zeros(1000, np.float32))
    path = tmp_path_factory.mktemp("full") / classifier.FULL_WEIGHTS
    _write_keras_h5(path, weights, with_top=True)
    return path


def test_flatten_order_is_keras_hwc(full_h5: Path, tubingen: Path, position: tuple[int, int, int]) -> None:
    content, (H, W, C) = tubingen, position
    model = classifier.load_classifier(str(full_h5))
    x = resize(preprocess(load_img(content, 512)), (224, 224))
    with torch.no_grad():
        logits = model.logits(x)[0]
    pool = _pool5(content)
    expected = SCALE * float(pool[C, H, W])
    # The same index read in PyTorch's (C, H, W) order would be another activation.
    wrong = SCALE * float(pool.flatten()[(H * 7 + W) * 512 + C])
    assert abs(expected - wrong) > 1e-3
    assert float(logits[CLASS]) == pytest.approx(expected, rel=2e-2)  # float16 test weights
    assert float(logits.abs().sum() - logits[CLASS].abs()) == 0.0


def test_probabilities_follow_the_softmax_and_sum_to_one(
    full_h5: Path, tubingen: Path, position: tuple[int, int, int]
) -> None:
    content, (H, W, C) = tubingen, position
    everything = classifier.classify(content, 1000, weights=full_h5)
    assert len(everything) == 1000
    assert sum(p for _, p in everything) == pytest.approx(1.0, abs=1e-5)
    name, p = everything[0]
    assert name == classifier.imagenet_classes()[CLASS][1] == "tiger_shark"
    v = SCALE * float(_pool5(content)[C, H, W])
    assert p == pytest.approx(np.exp(v) / (np.exp(v) + 999), rel=2e-2)


def test_class_names_are_keras_names() -> None:
    classes = classifier.imagenet_classes()
    assert len(classes) == 1000 and len({wnid for wnid, _ in classes}) == 1000
    assert classes[0] == ("n01440764", "tench")
    assert classes[660] == ("n03776460", "mobile_home")  # the seed's top class
    assert classes[999] == ("n15075141", "toilet_tissue")


def test_classify_cli_prints_names_and_decimals(
    full_h5: Path, tubingen: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content = tubingen
    assert main(["classify", str(content), "--weights", str(full_h5)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5
    parsed = [re.fullmatch(r"\('([A-Za-z0-9_'\-]+)', ([01]\.\d{7})\)", line) for line in lines]
    assert all(parsed), lines
    probs = [float(m.group(2)) for m in parsed if m]
    assert parsed[0] and parsed[0].group(1) == "tiger_shark"
    assert probs == sorted(probs, reverse=True) and all(0.0 <= p <= 1.0 for p in probs)
    assert main(["classify", str(content), "--weights", str(full_h5), "--top", "2", "--json", "--size", "256"]) == 0
    top2 = __import__("json").loads(capsys.readouterr().out)
    assert len(top2) == 2 and top2[0][0] == "tiger_shark"


def test_classify_finds_the_file_in_keras_cache(
    full_h5: Path, tubingen: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "keras" / "models"
    models.mkdir(parents=True)
    (models / classifier.FULL_WEIGHTS).symlink_to(full_h5)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert classifier.find_full_weights() == models / classifier.FULL_WEIGHTS
    assert classifier.classify(tubingen, 1)[0][0] == "tiger_shark"


def test_without_full_weights_one_clear_message(
    tiny_pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    assert main(["classify", str(tiny_pair[0])]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert classifier.FULL_WEIGHTS in err and str(tmp_path / "empty" / "models") in err and "--weights" in err
    assert main(["classify", str(tiny_pair[0]), "--weights", str(tmp_path / "nope.h5")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(ValueError, match="top"):
        classifier.classify(tiny_pair[0], 0)


def test_notop_file_lacks_the_classifier(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    notop = tmp_path / "notop.h5"
    _write_keras_h5(
        notop,
        {n: (w.permute(2, 3, 1, 0).numpy().astype(np.float16), b.numpy()) for n, (w, b) in load_weights(None).items()},
    )
    with pytest.raises(WeightsError, match="fc1"):
        classifier.classify(tiny_pair[0], weights=notop)
