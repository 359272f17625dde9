"""Winograd F(m x m, 3x3): the values and input gradients of F.conv2d, and the network's loss unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from styletransfer import winograd as W
from styletransfer.images import load_img
from styletransfer.pipeline import STYLE_TARGETS, Settings, build_objective, resolve_settings, stylize_tensor
from styletransfer.vgg import (
    VGG19,
    WINOGRAD_MIN_CHANNELS,
    WINOGRAD_MIN_SIDE,
    get_vgg,
    load_weights,
    preprocess,
)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


@pytest.mark.parametrize("m", [2, 4, 6])
def test_one_dimensional_transforms_compute_a_correlation(m: int) -> None:
    # A^T [(G g) * (B^T d)] = (d_{i} g_0 + d_{i+1} g_1 + d_{i+2} g_2)_{i < m}, exactly (float64).
    bt, g, at = (W._matrix(t) for t in W.TRANSFORMS[m])
    d, k = torch.randn(m + 2, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    expected = torch.stack([d[i : i + 3] @ k for i in range(m)])
    torch.testing.assert_close(at @ ((g @ k) * (bt @ d)), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m", [2, 4, 6])
@pytest.mark.parametrize(
    ("n", "c", "k", "h", "w"),
    [(1, 3, 8, 13, 17), (2, 16, 32, 8, 8), (1, 32, 16, 1, 2), (1, 24, 40, 5, 11), (1, 128, 64, 9, 7)],
)
def test_output_and_input_gradient_match_conv2d(m: int, n: int, c: int, k: int, h: int, w: int) -> None:
    torch.manual_seed(0)
    weight, bias = torch.randn(k, c, 3, 3) / (3 * c**0.5), torch.randn(k)
    x = torch.randn(n, c, h, w).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(n, k, h, w)
    a = x.clone().requires_grad_(True)
    ya = W.winograd_conv2d(a, W.WinogradConv(weight, bias, m))
    b = x.contiguous().requires_grad_(True)
    yb = F.conv2d(b, weight, bias, padding=1)
    (ga,) = torch.autograd.grad(ya, a, grad)
    (gb,) = torch.autograd.grad(yb, b, grad)
    assert ya.shape == yb.shape and ya.is_contiguous(memory_format=torch.channels_last)
    assert _rel(ya, yb) <= 1e-5
    assert _rel(ga, gb) <= 1e-5


def test_bands_of_tile_rows_match_conv2d(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(1)
    weight, bias = torch.randn(8, 4, 3, 3), torch.randn(8)
    x = torch.randn(2, 4, 23, 10)
    monkeypatch.setattr(W, "BAND_BYTES", 1)
    monkeypatch.setattr(W, "BAND_BYTES_ONE_THREAD", 1)
    monkeypatch.setattr(W, "BAND_TILES", 1)  # one tile row per band: 6 bands
    assert _rel(W.winograd_conv2d(x, W.WinogradConv(weight, bias)), F.conv2d(x, weight, bias, padding=1)) <= 1e-5


def test_unknown_tile_size_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no Winograd transform F\(3, 3\)"):
        W.WinogradConv(torch.zeros(1, 1, 3, 3), torch.zeros(1), 3)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread, where the network uses Winograd from 128 channels (:data:`styletransfer.vgg.WINOGRAD_MIN_CHANNELS`)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _plain_vgg() -> VGG19:
    net = VGG19(load_weights(), winograd=False)
    net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return net


@pytest.mark.usefixtures("one_thread")
def test_network_uses_winograd_only_on_wide_fp32_cpu_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[int] = []
    real = W._WinogradFunction.apply

    def counting(x: torch.Tensor, conv: W.WinogradConv) -> torch.Tensor:
        used.append(x.shape[1])
        out: torch.Tensor = real(x, conv)  # type: ignore[no-untyped-call]
        return out

    monkeypatch.setattr(W._WinogradFunction, "apply", counting)
    x = preprocess(torch.rand(1, 3, 64, 64))
    get_vgg()(x, ["block4_conv1"])
    # block2_conv2 (32 px) and block3_conv1..4 (16 px); block1 and block2_conv1 have fewer channels,
    # block4_conv1 is 8 px a side
    assert used == [128, 128, 256, 256, 256]
    assert WINOGRAD_MIN_CHANNELS[1] == 128 and WINOGRAD_MIN_SIDE == 64 // 4
    used.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        get_vgg()(x, ["block4_conv1"])
    assert used == []  # bf16 keeps the standard convolution
    torch.set_num_threads(2)
    get_vgg()(x, ["block4_conv1"])
    assert used == [128, 128, 256, 256, 256]  # two threads: the same rule
    used.clear()
    torch.set_num_threads(3)
    get_vgg()(x, ["block4_conv1"])
    assert used == []  # thread counts not measured keep the standard convolution


@pytest.mark.usefixtures("one_thread")
def test_features_and_image_gradient_match_the_standard_network() -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 131, 150)  # Winograd up to block4 (16 x 18)
    layers = ["block1_conv1", "block3_conv1", "block5_conv2"]
    results = []
    for net in (get_vgg(), _plain_vgg()):
        x = image.clone().requires_grad_(True)
        feats = net(preprocess(x), layers)
        (g,) = torch.autograd.grad(sum(f.square().mean() for f in feats.values()), x)
        results.append((feats, g))
    (fa, ga), (fb, gb) = results
    for name in layers:
        assert _rel(fa[name], fb[name]) <= 1e-5
    assert _rel(ga, gb) <= 1e-5


@pytest.mark.usefixtures("one_thread")
def test_total_loss_matches_the_standard_path(tubingen: Path, starry: Path) -> None:
    settings = resolve_settings("fast", device="cpu")
    content, style = load_img(tubingen, 192), load_img(starry, 192)  # Winograd up to block4
    # Noise, so that no 2x2 max pool holds exact ties: flat regions of the photograph give equal
    # activations that the two paths round differently, which moves a tie's gradient to another pixel.
    noise = torch.randn(content.shape, generator=torch.Generator().manual_seed(0))
    vgg = get_vgg()
    losses, grads = [], []
    try:
        for winograd in (True, False):
            vgg.winograd = winograd
            STYLE_TARGETS.clear()  # the style targets too, not reused from the other path
            objective = build_objective(settings, content, [style])
            x = (0.9 * content + 0.05 + 0.02 * noise).requires_grad_(True)
            terms = objective.terms(x)
            loss = terms["style"] + terms["content"] + terms["tv"]
            losses.append(float(loss.detach()))
            grads.append(torch.autograd.grad(loss, x)[0])
    finally:
        vgg.winograd = True
    assert abs(losses[0] / losses[1] - 1) <= 1e-5
    assert _rel(grads[0], grads[1]) <= 1e-5


def _losses(content: Path, style: Path, settings: Settings) -> list[float]:
    """The loss before each step of a run."""
    losses: list[float] = []
    stylize_tensor(content, style, settings, callback=lambda p: losses.append(p.loss))
    return losses


@pytest.mark.usefixtures("one_thread")
def test_tutorial_first_steps_unchanged(tubingen: Path, starry: Path) -> None:
    settings = resolve_settings("tutorial", steps=3, size=64, device="cpu")
    vgg = get_vgg()
    seen: dict[bool, list[float]] = {}
    try:
        for winograd in (True, False):
            vgg.winograd = winograd
            STYLE_TARGETS.clear()
            seen[winograd] = _losses(tubingen, starry, settings)
    finally:
        vgg.winograd = True
    assert len(seen[True]) == 3
    for a, b in zip(seen[True], seen[False]):
        assert abs(a / b - 1) <= 1e-5
