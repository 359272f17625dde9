"""Batched stylisation: several images in one forward/backward, each with its own L-BFGS state.

The batched run must give each image what the sequential run gives it.  With
oneDNN's convolutions the two differ by rounding only (oneDNN picks another
kernel for a batch of 512-channel maps: about 1e-7 relative), which L-BFGS
amplifies over the evaluations as it amplifies the rounding of another thread
count.  With PyTorch's native convolutions (``mkldnn`` off) each image's
arithmetic does not depend on the batch, and the two runs must agree bit for
bit: every line search, every stop and every evaluation count.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import Tensor

from styletransfer.losses import BatchObjective
from styletransfer.optimize import Diverged
from styletransfer.pipeline import (
    Settings,
    batch_key,
    decode_inputs,
    objective_at,
    optimize,
    optimize_batch,
    resolve_settings,
    stylize_batch,
)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def contents(tubingen: Path) -> list[Image.Image]:
    """Three 40x30 contents: two crops of Tübingen and a flat grey (its run stops early)."""
    with Image.open(tubingen) as im:
        crops = [im.crop(b).resize((40, 30), Image.BILINEAR) for b in [(0, 0, 512, 384), (0, 100, 300, 325)]]
    return [*crops, Image.new("RGB", (40, 30), (128, 128, 128))]


@pytest.fixture
def style(starry: Path) -> Image.Image:
    with Image.open(starry) as im:
        return im.resize((40, 32), Image.BILINEAR)


def _sequential(contents: list[Image.Image], style: Image.Image, settings: Settings) -> list[tuple[Tensor, list]]:
    runs = []
    for c in contents:
        losses: list[float] = []
        image = optimize(decode_inputs(c, style), settings, callback=lambda p, n=losses: n.append(p.loss)).image
        runs.append((image, losses))
    return runs


def _batched(contents: list[Image.Image], style: Image.Image, settings: Settings) -> list[tuple[Tensor, list]]:
    losses: list[list[float]] = [[] for _ in contents]
    out = optimize_batch(
        [decode_inputs(c, style) for c in contents],
        settings,
        callbacks=[lambda p, n=n: n.append(p.loss) for n in losses],
    )
    assert all(o.status == "complete" for o in out)
    return [(o.image, n) for o, n in zip(out, losses)]


@pytest.mark.parametrize("n", [2, 3])
def test_batched_equals_sequential_exactly_with_batch_independent_arithmetic(contents, style, n):
    """Two and three contents; in the three, the grey one stops long before the others, which go on."""
    settings = resolve_settings("fast", size=40, device="cpu", steps=26, stop_rtol=0.1, stop_window=3, precision="fp32")
    with torch.backends.mkldnn.flags(enabled=False):
        sequential = _sequential(contents[:n], style, settings)
        batched = _batched(contents[:n], style, settings)
    counts = [len(losses) for _, losses in sequential]
    if n == 3:
        assert counts[2] < min(counts[:2]) - 10, counts  # the grey content left the batch early
    assert [len(losses) for _, losses in batched] == counts
    for (a, la), (b, lb) in zip(sequential, batched):
        assert la == lb  # the same loss at every evaluation: the same line searches
        assert float((a - b).abs().max()) < 1e-6


def test_batched_agrees_with_sequential_under_onednn(contents, style):
    """Under oneDNN's batch-dependent kernels: the same evaluation counts and pixels within 1e-4 over a short run."""
    settings = resolve_settings("fast", size=40, device="cpu", steps=3)
    sequential = _sequential(contents[:2], style, settings)
    batched = _batched(contents[:2], style, settings)
    for (a, la), (b, lb) in zip(sequential, batched):
        assert len(la) == len(lb) == 3
        assert float((a - b).abs().max()) < 1e-4


def test_batch_objective_is_each_images_own_objective(contents, style):
    """Image b's terms and gradient from the batch equal its own objective's: they do not depend on the others."""
    settings = resolve_settings("fast", size=40, device="cpu")
    stage = [objective_at(decode_inputs(c, style), settings, 40) for c in contents]
    batch = BatchObjective([o for o, _, _ in stage])
    noise = torch.Generator().manual_seed(0)
    points = [0.8 * c + 0.2 * torch.rand(c.shape, generator=noise) for _, c, _ in stage]
    x = torch.cat(points).requires_grad_(True)
    terms = batch.terms(x)
    (grad,) = torch.autograd.grad((terms["style"] + terms["content"] + terms["tv"]).sum(), x)
    for j, ((objective, _, _), point) in enumerate(zip(stage, points)):
        xj = point.clone().requires_grad_(True)
        own = objective.terms(xj)
        (g,) = torch.autograd.grad(own["style"] + own["content"] + own["tv"], xj)
        for k in ("style", "content", "tv"):
            assert float(terms[k][j].detach()) == pytest.approx(float(own[k].detach()), rel=1e-5)
        assert float((grad[j : j + 1] - g).abs().max()) <= 1e-5 * float(g.abs().max())
    # a subset: image 2 alone, evaluated against objective 2
    alone = batch.terms(torch.cat(points[2:]), [2])
    assert float(alone["content"][0]) == pytest.approx(float(terms["content"][2].detach()), rel=1e-5)


def test_a_stop_interrupts_every_run_with_its_best_image(contents, style):
    settings = resolve_settings("fast", size=40, device="cpu", steps=10)
    evaluations = []
    out = optimize_batch(
        [decode_inputs(c, style) for c in contents[:2]],
        settings,
        callbacks=[lambda p: evaluations.append(p.step), None],
        should_stop=lambda: len(evaluations) >= 3,
    )
    assert all(o.status == "interrupted" and o.step == 3 for o in out)
    assert all(bool(((o.image >= 0) & (o.image <= 1)).all()) for o in out)


def test_a_diverged_run_leaves_the_batch_and_the_others_finish(contents, style):
    settings = resolve_settings("fast", size=40, device="cpu", steps=5)
    inputs = [decode_inputs(c, style) for c in contents[:2]]
    inputs[1].init = torch.full_like(inputs[1].content_pixels, float("nan"))  # a NaN start: a NaN loss
    out = optimize_batch(inputs, settings)
    assert out[0].status == "complete" and out[1].status == "diverged"
    assert isinstance(out[1].error(), Diverged)
    alone = optimize(decode_inputs(contents[0], style), settings).image
    assert float((out[0].image - alone).abs().max()) < 1e-4


def test_coarse_to_fine_runs_each_scale_per_image(contents, style):
    settings = resolve_settings("fast", size=48, coarse_size=24, steps=3, refine_steps=2, device="cpu")
    with torch.backends.mkldnn.flags(enabled=False):
        sequential = _sequential(contents[:2], style, settings)
        batched = _batched(contents[:2], style, settings)
    for (a, la), (b, lb) in zip(sequential, batched):
        assert a.shape == b.shape == (1, 3, 36, 48) and la == lb and len(la) == 5
        assert float((a - b).abs().max()) < 1e-6


def test_what_cannot_share_a_batch(contents, style):
    settings = resolve_settings("fast", size=40, device="cpu")
    a, b = (decode_inputs(c, style) for c in contents[:2])
    assert batch_key(a, settings) == batch_key(b, settings) is not None
    wide = decode_inputs(Image.new("RGB", (40, 20)), style)
    assert batch_key(wide, settings) != batch_key(a, settings)  # another shape
    assert batch_key(a, resolve_settings("tutorial", size=40, device="cpu")) is None  # Adam
    assert batch_key(a, resolve_settings("fast", size=40, device="cpu", preserve_colors="histogram")) is None
    with pytest.raises(Exception, match="a batch needs"):
        optimize_batch([a, wide], settings)


def test_stylize_batch_returns_one_image_per_content(contents, style):
    settings = resolve_settings("fast", size=40, device="cpu", steps=2)
    images = stylize_batch(contents[:2], style, settings)
    assert [tuple(i.shape) for i in images] == [(1, 3, 30, 40)] * 2


def test_a_batch_is_cut_to_what_fits_in_memory():
    from styletransfer.memory import BASE_BYTES, batch_capacity, estimate_bytes, winograd_bytes
    from styletransfer.presets import get_preset

    preset, cpu = get_preset("fast"), torch.device("cpu")
    fixed = BASE_BYTES + winograd_bytes(preset, 384, 512)  # the network and its kernels, shared by the batch
    each = estimate_bytes(preset, 384, 512) - fixed
    assert each == estimate_bytes(preset, 384, 512, style_pixels=0) - fixed + 512 * 384 * 512
    assert batch_capacity(preset, 384, 512, cpu, available=fixed + 3 * each + 1) == 3
    assert batch_capacity(preset, 384, 512, cpu, available=fixed + each // 2) == 1


def test_bf16_runs_that_stop_early_finish_in_fp32(contents, style):
    """Under bf16 a scale whose stopping rule fires goes on in fp32 for the evaluations left, alone or batched."""
    settings = resolve_settings("fast", size=40, device="cpu", steps=26, stop_rtol=1.0, stop_window=3, precision="bf16")
    # stop_rtol 1: the rule fires as soon as its window is full, after 4 evaluations; then 4 more in fp32.
    ((_, losses),) = _sequential(contents[:1], style, settings)
    assert len(losses) == 8
    assert optimize(decode_inputs(contents[0], style), settings).objective.precision == "fp32"
    ((_, exact),) = _sequential(contents[:1], style, replace(settings, precision="fp32"))
    assert len(exact) == 4  # fp32 from the start: no second phase
    assert [len(n) for _, n in _batched(contents[:2], style, settings)] == [8, 8]
