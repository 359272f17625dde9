"""Gram matrix and total variation against their formulas."""

from __future__ import annotations

import torch

from styletransfer.losses import Objective, Weights, gram_distance, gram_matrix, total_variation
from styletransfer.vgg import get_vgg, preprocess


def test_gram_matrix_matches_einsum() -> None:
    torch.manual_seed(0)
    f = torch.randn(2, 7, 5, 3, dtype=torch.float64)
    expected = torch.einsum("bchw,bdhw->bcd", f, f) / (5 * 3)
    torch.testing.assert_close(gram_matrix(f), expected)


def test_gram_matrix_in_seed_layout() -> None:
    # The seed computes einsum('bijc,bijd->bcd') on (B, H, W, C) tensors.
    torch.manual_seed(1)
    bhwc = torch.rand(1, 4, 6, 3, dtype=torch.float64)
    expected = torch.einsum("bijc,bijd->bcd", bhwc, bhwc) / 24
    torch.testing.assert_close(gram_matrix(bhwc.permute(0, 3, 1, 2)), expected)


def test_total_variation_matches_definition_non_square() -> None:
    torch.manual_seed(2)
    x = torch.rand(1, 3, 5, 8, dtype=torch.float64)
    expected = 0.0
    for c in range(3):
        for i in range(5):
            for j in range(8):
                if i + 1 < 5:
                    expected += abs(float(x[0, c, i + 1, j] - x[0, c, i, j]))
                if j + 1 < 8:
                    expected += abs(float(x[0, c, i, j + 1] - x[0, c, i, j]))
    assert abs(float(total_variation(x)) - expected) < 1e-9


def test_total_variation_of_a_step_edge() -> None:
    x = torch.zeros(1, 3, 4, 6)
    x[..., :, 3:] = 1.0  # one vertical edge, 4 rows x 3 channels
    assert float(total_variation(x)) == 12.0


def test_objective_terms_follow_the_formula() -> None:
    torch.manual_seed(3)
    vgg = get_vgg()
    content, style, x = torch.rand(1, 3, 48, 64), torch.rand(1, 3, 40, 56), torch.rand(1, 3, 48, 64)
    layers_s, layers_c = ["block1_conv1", "block3_conv1"], ["block4_conv2"]
    obj = Objective(vgg, content, style, weights=Weights(0.5, 2.0, 3.0), content_layers=layers_c, style_layers=layers_s)
    with torch.no_grad():
        terms = obj.terms(x)
        fx = vgg(preprocess(x), layers_s + layers_c)
        fs = vgg(preprocess(style), layers_s)
        fc = vgg(preprocess(content), layers_c)
        style = sum(((gram_matrix(fx[n]) - gram_matrix(fs[n])) ** 2).mean() for n in layers_s) * 0.5 / 2
        content_loss = ((fx["block4_conv2"] - fc["block4_conv2"]) ** 2).mean() * 2.0
    torch.testing.assert_close(terms["style"], style)
    torch.testing.assert_close(terms["content"], content_loss)
    torch.testing.assert_close(terms["tv"], 3.0 * total_variation(x))


def test_gram_distance_value_and_gradient_match_autograd_through_the_gram_matrix() -> None:
    torch.manual_seed(0)
    feats = torch.randn(2, 5, 4, 3, dtype=torch.float64, requires_grad=True)
    other = torch.randn(1, 5, 6, 7, dtype=torch.float64)
    target = gram_matrix(other)
    reference = torch.mean((gram_matrix(feats) - target) ** 2)
    (expected,) = torch.autograd.grad(3.0 * reference, feats)
    value = gram_distance(feats, target)
    (got,) = torch.autograd.grad(3.0 * value, feats)
    assert torch.allclose(value, reference, rtol=1e-12, atol=0)
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(lambda f: gram_distance(f, target), (feats,))


def test_gram_distance_is_the_same_for_channels_last_features() -> None:
    torch.manual_seed(3)
    base = torch.randn(1, 6, 5, 4, dtype=torch.float64)
    target = gram_matrix(torch.randn(1, 6, 3, 3, dtype=torch.float64))
    results = []
    for layout in (torch.contiguous_format, torch.channels_last):
        feats = base.clone().contiguous(memory_format=layout).requires_grad_(True)
        value = gram_distance(feats, target)
        (grad,) = torch.autograd.grad(value, feats)
        assert grad.is_contiguous(memory_format=layout)
        results.append((value, grad))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=0)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-10, atol=1e-14)
