"""Inspection tools: layer statistics, high-pass and Sobel diagnostics, figures, show()."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from styletransfer import display, figures, inspection
from styletransfer.images import load_img
from styletransfer.vgg import get_vgg, preprocess


def test_layer_stats_agree_with_a_direct_computation(tiny_pair: tuple[Path, Path]) -> None:
    content, _ = tiny_pair
    stats = inspection.layer_stats(content, ["block1_conv1", "block3_conv1"], size=64)
    x = load_img(content, 64) * 255.0  # the seed's style_extractor(image*255): no preprocess_input
    f = get_vgg()(x, ["block1_conv1", "block3_conv1"])
    for name, st in stats.items():
        a = f[name].permute(0, 2, 3, 1).numpy()
        assert st["shape"] == list(a.shape)
        assert st["min"] == pytest.approx(float(a.min())) and st["max"] == pytest.approx(float(a.max()))
        assert st["mean"] == pytest.approx(float(a.astype(np.float64).mean()), rel=1e-6)
    assert stats["block3_conv1"]["shape"] == [1, 12, 16, 256]  # (batch, H, W, C) of 48x64 / 4


def test_gram_stats_use_preprocessing_and_the_seed_formula(tiny_pair: tuple[Path, Path]) -> None:
    content, _ = tiny_pair
    stats = inspection.layer_stats(content, ["block2_conv1"], gram=True, size=64)
    f = get_vgg()(preprocess(load_img(content, 64)), ["block2_conv1"])["block2_conv1"][0]
    c, h, w = f.shape
    flat = f.reshape(c, h * w).double()
    g = (flat @ flat.T / (h * w)).numpy()  # G_cd = sum_ij F_ijc F_ijd / (H W)
    st = stats["block2_conv1"]
    assert st["shape"] == [1, 128, 128]
    assert st["max"] == pytest.approx(g.max(), rel=1e-5) and st["mean"] == pytest.approx(g.mean(), rel=1e-5)


def test_stats_default_layers_and_preprocess_override(tiny_pair: tuple[Path, Path]) -> None:
    content, _ = tiny_pair
    default = inspection.layer_stats(content, size=32)
    assert list(default) == [
        "block1_conv1",
        "block2_conv1",
        "block3_conv1",
        "block4_conv1",
        "block5_conv1",
        "block5_conv2",
    ]
    raw = inspection.layer_stats(content, ["block1_conv1"], size=32, preprocessed=False)
    caffe = inspection.layer_stats(content, ["block1_conv1"], size=32, preprocessed=True)
    assert raw == {"block1_conv1": default["block1_conv1"]}
    assert caffe["block1_conv1"]["mean"] != pytest.approx(raw["block1_conv1"]["mean"], rel=1e-3)
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        inspection.layer_stats(content, ["block6_conv1"], size=32)
    with pytest.raises(ValueError, match="no layers"):
        inspection.layer_stats(content, [], size=32)


def test_high_pass_matches_its_definition(rng: np.random.Generator) -> None:
    arr = rng.random((5, 7, 3), dtype=np.float32)
    x_var, y_var = inspection.high_pass(arr)
    assert x_var.shape == (5, 6, 3) and y_var.shape == (4, 7, 3)
    for i, j, c in [(0, 0, 0), (4, 5, 2), (2, 3, 1)]:
        assert x_var[i, j, c] == pytest.approx(arr[i, j + 1, c] - arr[i, j, c])
    for i, j, c in [(0, 0, 0), (3, 6, 2), (1, 4, 1)]:
        assert y_var[i, j, c] == pytest.approx(arr[i + 1, j, c] - arr[i, j, c])


def _sobel_by_definition(arr: np.ndarray) -> np.ndarray:
    """tf.image.sobel_edges written out: REFLECT padding, then the two 3x3 kernels."""
    ky = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float64)
    kx = ky.T
    h, w, c = arr.shape
    padded = np.pad(arr.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="reflect")
    out = np.zeros((h, w, c, 2))
    for i in range(h):
        for j in range(w):
            window = padded[i : i + 3, j : j + 3]  # (3, 3, c)
            out[i, j, :, 0] = np.einsum("ab,abc->c", ky, window)
            out[i, j, :, 1] = np.einsum("ab,abc->c", kx, window)
    return out


def test_sobel_matches_its_definition(rng: np.random.Generator) -> None:
    arr = rng.random((6, 5, 3), dtype=np.float32)
    got = inspection.sobel_edges(arr)
    assert got.shape == (6, 5, 3, 2)
    np.testing.assert_allclose(got, _sobel_by_definition(arr), atol=1e-5)
    # A vertical ramp has only a d/dy component: 8 per unit step in the interior.
    ramp = np.repeat(np.arange(6, dtype=np.float32)[:, None, None], 4, axis=1).repeat(3, axis=2) / 10
    edges = inspection.sobel_edges(ramp)
    np.testing.assert_allclose(edges[2:4, :, :, 0], 0.8, atol=1e-6)
    np.testing.assert_allclose(edges[..., 1], 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="at least 2x2"):
        inspection.sobel_edges(np.zeros((1, 5, 3), dtype=np.float32))


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def test_figures_have_the_expected_pixel_sizes(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = tiny_pair
    frames = [(100 * k, load_img(content, 32)) for k in range(1, 8)]
    log = [
        {"step": s, "loss": 10.0 / s, "style": 5.0 / s, "content": 0.0 if s == 1 else 4.0 / s, "tv": 1.0 / s}
        for s in range(1, 20)
    ]
    paths = figures.write_figures(tmp_path / "figs", content, style, result=style, frames=frames, log=log)
    assert [p.name for p in paths] == list(figures.FIGURE_FILES)
    sizes = {p.name: _size(p) for p in paths}
    assert sizes["inputs.png"] == (1200, 500)
    assert sizes["highpass.png"] == (1400, 1000)
    assert sizes["sobel.png"] == (1400, 600)
    assert sizes["loss.png"] == (800, 500)
    # 7 frames: 5 columns of 3.2 inches, 2 rows; each row 3.2 * 48/64 + 0.4 inches.
    assert sizes["progress.png"] == (1600, round(2 * (3.2 * 24 / 32 + 0.4) * 100))


def test_figure_contents(tiny_pair: tuple[Path, Path]) -> None:
    content, style = tiny_pair
    fig = figures.high_pass_figure(content, style)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "Horizontal Deltas: Original",
        "Vertical Deltas: Original",
        "Horizontal Deltas: Styled",
        "Vertical Deltas: Styled",
    ]
    # The top-left panel shows clip(2 * y_var + 0.5) of the content.
    shown = fig.axes[0].get_images()[0].get_array()
    _, y_var = inspection.high_pass(content)
    np.testing.assert_allclose(np.asarray(shown), np.clip(2 * y_var + 0.5, 0, 1), atol=1e-6)
    sobel = figures.sobel_figure(content)
    assert [ax.get_title() for ax in sobel.axes] == ["Horizontal Sobel-edges", "Vertical Sobel-edges"]
    np.testing.assert_allclose(
        np.asarray(sobel.axes[1].get_images()[0].get_array()),
        np.clip(inspection.sobel_edges(content)[..., 1] / 4 + 0.5, 0, 1),
        atol=1e-6,
    )
    assert [ax.get_title() for ax in figures.inputs_figure(content, style).axes] == ["Content Image", "Style Image"]
    sheet = figures.progress_figure([(100, content), (200, style)])
    assert [ax.get_title() for ax in sheet.axes] == ["Train step: 100", "Train step: 200"]


def test_loss_figure_reads_a_csv_log(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("step,size,loss,style,content,tv,elapsed\n1,32,9,5,0,4,0.1\n2,32,7,4,1,2,0.2\n")
    fig = figures.loss_figure(log)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.get_lines()] == ["total", "style", "content", "total variation"]
    assert list(ax.get_lines()[0].get_ydata()) == [9.0, 7.0]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a styletransfer log"):
        figures.loss_figure(bad)
    with pytest.raises(ValueError, match="at least one frame"):
        figures.progress_figure([])
    with pytest.raises(ValueError, match=r"\.png"):
        figures.save_figure(fig, tmp_path / "loss.jpg")


def test_show_outside_jupyter_opens_a_viewer(monkeypatch: pytest.MonkeyPatch, tiny_pair: tuple[Path, Path]) -> None:
    shown: list[tuple[int, int]] = []
    monkeypatch.setattr(Image.Image, "show", lambda self, *a, **k: shown.append(self.size))
    monkeypatch.setattr(display, "in_jupyter", lambda: False)
    content, _ = tiny_pair
    fig = Figure(figsize=(2, 1))
    images = display.show(content, fig, torch.zeros(1, 3, 5, 4))
    assert shown == [(64, 48), (200, 100), (4, 5)] == [im.size for im in images]


def test_show_in_jupyter_displays_inline(monkeypatch: pytest.MonkeyPatch, tiny_pair: tuple[Path, Path]) -> None:
    displayed: list[object] = []
    ipython = types.ModuleType("IPython")
    ipython_display = types.ModuleType("IPython.display")
    ipython_display.display = lambda *objs: displayed.extend(objs)  # type: ignore[attr-defined]
    ipython.get_ipython = lambda: types.SimpleNamespace(kernel=object())  # type: ignore[attr-defined]
    ipython.display = ipython_display  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", ipython_display)
    assert display.in_jupyter()
    display.show(tiny_pair[0])
    assert len(displayed) == 1 and isinstance(displayed[0], Image.Image)
