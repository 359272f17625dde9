"""Regional styles (Gatys et al. 2017): the mask loader, propagation, guided Gram matrices, locality, regions."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer import api
from styletransfer.cli import main
from styletransfer.errors import InputError, OptionError
from styletransfer.job import make_job
from styletransfer.losses import (
    Objective,
    RegionVanished,
    Weights,
    gram_distance,
    gram_matrix,
    guided_gram,
    guided_gram_distance,
)
from styletransfer.masks import alpha_masks, kmeans_masks, load_mask, parse_auto_masks, propagate
from styletransfer.pipeline import decode_inputs
from styletransfer.runner import prepare
from styletransfer.vgg import get_vgg, preprocess
from styletransfer.vgg_layers import CONV_NAMES, LAYER_NAMES

torch.set_num_threads(1)


def _save(tmp_path: Path, name: str, array: np.ndarray, mode: str | None = None) -> Path:
    path = tmp_path / name
    Image.fromarray(array, mode).save(path)
    return path


def _half(h: int, w: int, left: bool = True) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    if left:
        m[:, : w // 2] = 255
    else:
        m[:, w // 2 :] = 255
    return m


# --- The loader ---------------------------------------------------------------------------------


def test_greyscale_colour_and_alpha_masks(tmp_path: Path) -> None:
    grey = np.array([[0, 128, 255]], np.uint8)
    assert torch.allclose(load_mask(_save(tmp_path, "g.png", grey))[0, 0], torch.tensor([[0, 128 / 255, 1.0]]))
    colour = np.zeros((1, 2, 3), np.uint8)
    colour[0, 0] = (255, 0, 0)
    colour[0, 1] = (255, 255, 255)
    m = load_mask(_save(tmp_path, "c.png", colour))
    assert m.shape == (1, 1, 1, 2) and abs(float(m[0, 0, 0, 0]) - 76 / 255) < 1e-6 and float(m[0, 0, 0, 1]) == 1.0
    rgba = np.full((1, 2, 4), 255, np.uint8)
    rgba[0, 0, 3] = 0  # white but transparent: weighs nothing
    m = load_mask(_save(tmp_path, "a.png", rgba, "RGBA"))
    assert float(m[0, 0, 0, 0]) == 0.0 and float(m[0, 0, 0, 1]) == 1.0


def test_masks_are_resized_to_the_content_but_another_aspect_ratio_is_refused(
    tmp_path: Path, tiny_pair: tuple[Path, Path]
) -> None:
    content, style = tiny_pair  # 64x48
    small = _save(tmp_path, "small.png", _half(24, 32))  # the same frame, half the size
    inputs = decode_inputs(content, style, masks=[small])
    assert inputs.masks is not None and inputs.masks[0].shape == (1, 1, 24, 32)
    wrong = _save(tmp_path, "wrong.png", _half(48, 48))
    with pytest.raises(InputError, match=r"wrong.png: the mask is 48x48 but the content image is 64x48"):
        decode_inputs(content, style, masks=[wrong])
    with pytest.raises(InputError, match="no such file"):
        decode_inputs(content, style, masks=[tmp_path / "missing.png"])


def test_a_mask_count_that_does_not_match_the_styles_is_an_option_error(
    tmp_path: Path, tiny_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    m = _save(tmp_path, "m.png", _half(48, 64))
    with pytest.raises(OptionError, match="masks: 2 masks for 1 style image; give one mask per style") as info:
        prepare(make_job(content, style, None, masks=[str(m), str(m)], size=32, device="cpu"))
    assert info.value.option == "masks"
    with pytest.raises(OptionError, match="style_masks: 1 mask for 2 style images"):
        decode_inputs(content, [style, style], masks=[m, m], style_masks=[m])
    code = main([str(content), str(style), "-o", str(tmp_path / "o.png"), "--masks", str(m), str(m), "--size", "32"])
    assert code == 2
    assert "--masks: 2 masks for 1 style image" in capsys.readouterr().err


# --- Propagation --------------------------------------------------------------------------------


def test_propagated_masks_have_the_feature_shape_at_every_layer_for_an_odd_size() -> None:
    torch.manual_seed(0)
    mask = (torch.rand(1, 1, 37, 53) > 0.5).float()
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        feats = get_vgg()(preprocess(x), CONV_NAMES)
    simple = propagate(mask, CONV_NAMES, "simple")
    inside = propagate(mask, CONV_NAMES, "inside")
    for name in CONV_NAMES:
        assert simple[name].shape[-2:] == feats[name].shape[-2:], name
        assert inside[name].shape[-2:] == feats[name].shape[-2:], name
        assert bool((inside[name] <= simple[name] + 1e-7).all()), name  # inside is contained in simple
    assert set(propagate(mask, LAYER_NAMES[:3])) == set(LAYER_NAMES[:3])


def test_inside_keeps_only_neurons_whose_receptive_field_is_inside() -> None:
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :, :16] = 1.0
    inside = propagate(mask, ["block1_conv2"], "inside")["block1_conv2"]
    assert float(inside[0, 0, 0, 13]) == 1.0 and float(inside[0, 0, 0, 14]) == 0.0  # two 3x3 erosions: 2 columns
    white = propagate(torch.ones(1, 1, 32, 32), ["block3_conv1"], "inside")["block3_conv1"]
    assert bool((white == 1).all())  # the image border is not an edge of the region


# --- Guided Gram matrices -----------------------------------------------------------------------


def test_an_all_white_mask_gives_exactly_the_unguided_gram_matrix() -> None:
    torch.manual_seed(1)
    f = torch.randn(1, 8, 7, 9)
    assert torch.equal(guided_gram(f, torch.ones(1, 1, 7, 9)), gram_matrix(f))
    assert torch.equal(guided_gram(f, None), gram_matrix(f))


def test_a_mask_of_a_region_interior_gives_the_gram_matrix_of_those_features_alone() -> None:
    torch.manual_seed(2)
    f = torch.randn(1, 6, 10, 12, dtype=torch.float64)
    mask = torch.zeros(1, 1, 10, 12, dtype=torch.float64)
    mask[..., 2:7, 3:11] = 1.0
    torch.testing.assert_close(guided_gram(f, mask), gram_matrix(f[..., 2:7, 3:11]), rtol=1e-12, atol=1e-12)


def test_guided_gram_distance_matches_autograd_and_gradcheck() -> None:
    torch.manual_seed(3)
    target = gram_matrix(torch.randn(1, 5, 4, 4, dtype=torch.float64))
    mask = torch.rand(1, 1, 4, 3, dtype=torch.float64)
    for layout in (torch.contiguous_format, torch.channels_last):
        feats = torch.randn(1, 5, 4, 3, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_(True)
        reference = ((guided_gram(feats, mask) - target) ** 2).mean()
        (expected,) = torch.autograd.grad(reference, feats)
        value = guided_gram_distance(feats, target, mask)
        (got,) = torch.autograd.grad(value, feats)
        torch.testing.assert_close(value, reference, rtol=1e-12, atol=0)
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
        assert torch.autograd.gradcheck(lambda f: guided_gram_distance(f, target, mask), (feats,))
    plain = torch.randn(1, 5, 4, 3, dtype=torch.float64)
    assert torch.equal(guided_gram_distance(plain, target, None), gram_distance(plain, target))


def _style_only(content: torch.Tensor, style: torch.Tensor, layers: list[str], **kw: object) -> Objective:
    return Objective(
        get_vgg(), content, style, weights=Weights(1.0, 0.0, 0.0), content_layers=[], style_layers=layers, **kw
    )  # type: ignore[arg-type]


def test_the_style_gradient_is_zero_beyond_the_receptive_field_of_the_region() -> None:
    torch.manual_seed(4)
    content, style = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 48, 48)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :32] = 1.0
    objective = _style_only(content, style, ["block1_conv1", "block2_conv1"], masks=[mask])
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    (grad,) = torch.autograd.grad(objective.terms(x)["style"], x)
    # block2_conv1's receptive field reaches 6 pixels past the last neuron whose mask is non-zero (column 31)
    assert float(grad[..., 38:].abs().max()) == 0.0
    assert float(grad[..., :32].abs().mean()) > 0.0


def test_a_region_that_vanishes_skips_its_layer_with_a_note_not_a_nan() -> None:
    torch.manual_seed(5)
    content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 0, 0] = 1.0  # one pixel: gone after two pools
    with pytest.warns(RegionVanished, match="region 1 at block3_conv1"):
        objective = _style_only(content, style, ["block1_conv1", "block3_conv1"], masks=[mask], mask_mode="simple")
    value = objective.terms(torch.rand(1, 3, 32, 32))["style"]
    assert torch.isfinite(value) and float(value) > 0


def test_all_black_masks_give_no_style_loss() -> None:
    content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RegionVanished)
        objective = _style_only(content, style, ["block1_conv1"], masks=[torch.zeros(1, 1, 32, 32)])
    assert float(objective.terms(torch.rand(1, 3, 32, 32))["style"]) == 0.0


# --- Runs ---------------------------------------------------------------------------------------


def test_no_mask_gives_the_same_pixels_as_one_all_white_mask(tmp_path: Path, tiny_pair: tuple[Path, Path]) -> None:
    content, style = tiny_pair
    white = _save(tmp_path, "white.png", np.full((48, 64), 255, np.uint8))
    kw = dict(size=32, steps=4, device="cpu", seed=3, init="noise")
    plain = api.stylize(content, style, **kw)  # type: ignore[arg-type]
    masked = api.stylize(content, style, masks=[white], **kw)  # type: ignore[arg-type]
    assert np.array_equal(np.asarray(plain), np.asarray(masked))


def _gram_distances(image: torch.Tensor, mask: torch.Tensor, styles: list[torch.Tensor]) -> list[float]:
    """The mean over the seed's style layers of the region's guided Gram distance to each style's Gram matrix."""
    layers = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1"]
    vgg = get_vgg()
    with torch.no_grad():
        fx = vgg(preprocess(image), layers)
        seen = propagate(mask, layers)
        out = []
        for s in styles:
            fs = vgg(preprocess(s), layers)
            out.append(float(sum(((guided_gram(fx[n], seen[n]) - gram_matrix(fs[n])) ** 2).mean() for n in layers)) / 4)
    return out


def _as_run(image: Path, size: int) -> torch.Tensor:
    """``image`` at long side ``size`` as a run decodes it (a much larger file decoded smaller first)."""
    from styletransfer.images import resize, scaled_shape, to_tensor

    t = to_tensor(image, size)
    return resize(t, scaled_shape(t.shape[2], t.shape[3], size))


@pytest.mark.slow
def test_two_regions_each_move_toward_their_own_style(tmp_path: Path, tubingen: Path, starry: Path) -> None:
    from styletransfer.examples import example_path
    from styletransfer.images import to_tensor

    scream = example_path("the_scream.jpg")
    content = _as_run(tubingen, 64)
    h, w = content.shape[-2:]
    left = _save(tmp_path, "left.png", _half(h, w, left=True))
    right = _save(tmp_path, "right.png", _half(h, w, left=False))
    out = api.stylize(tubingen, [starry, scream], masks=[left, right], size=64, steps=40, device="cpu", preset="fast")
    result = to_tensor(out)
    styles = [_as_run(starry, 64), _as_run(scream, 64)]
    for mask_path, own in ((left, 0), (right, 1)):
        mask = load_mask(mask_path)
        after = _gram_distances(result, mask, styles)
        before = _gram_distances(content, mask, styles)
        other = 1 - own
        assert after[own] < before[own] * 0.5, (own, before, after)  # toward its own style
        assert after[own] < after[other], (own, after)  # and nearer its own than the other


def test_save_masks_writes_what_each_layer_sees(tmp_path: Path, tiny_pair: tuple[Path, Path]) -> None:
    content, style = tiny_pair
    m, r = _save(tmp_path, "m.png", _half(48, 64)), _save(tmp_path, "r.png", _half(40, 64))
    out, masks_dir = tmp_path / "out.png", tmp_path / "seen"
    code = main(
        [
            str(content),
            str(style),
            "-o",
            str(out),
            "--masks",
            str(m),
            "--style-masks",
            str(r),
            "--size",
            "32",
            "--steps",
            "2",
            "--device",
            "cpu",
            "--save-masks",
            str(masks_dir),
            "--quiet",
        ]
    )
    assert code == 0 and out.exists()
    seen = Image.open(masks_dir / "mask1_block2_conv1.png")
    assert seen.size == (16, 12) and seen.mode == "L"
    assert (masks_dir / "style_mask1_block5_conv1.png").exists()


def test_mask_mode_inside_runs_and_unknown_modes_are_refused(tmp_path: Path, tiny_pair: tuple[Path, Path]) -> None:
    content, style = tiny_pair
    m = _save(tmp_path, "m.png", _half(48, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RegionVanished)
        out = api.stylize(content, style, masks=[m], mask_mode="inside", size=32, steps=2, device="cpu")
    assert out.size == (32, 24)
    with pytest.raises(OptionError, match="unknown mask mode 'outside'"):
        api.stylize(content, style, masks=[m], mask_mode="outside", size=32, steps=2, device="cpu")


# --- Automatic masks ----------------------------------------------------------------------------


def test_auto_masks_spellings() -> None:
    assert parse_auto_masks("alpha") == ("alpha", 2) and parse_auto_masks("kmeans:3") == ("kmeans", 3)
    for bad in ("kmeans", "kmeans:1", "kmeans:x", "faces"):
        with pytest.raises(OptionError, match="use alpha, or kmeans:K"):
            parse_auto_masks(bad)


def test_alpha_masks_split_subject_and_background(tmp_path: Path, tiny_pair: tuple[Path, Path]) -> None:
    content, style = tiny_pair
    rgba = np.asarray(Image.open(content).convert("RGBA")).copy()
    rgba[:, :20, 3] = 0
    path = _save(tmp_path, "cut.png", rgba, "RGBA")
    inputs = decode_inputs(path, [style, style], auto_masks="alpha")
    assert inputs.masks is not None and len(inputs.masks) == 2
    assert float(inputs.masks[0][..., :20].max()) == 0.0 and float(inputs.masks[1][..., :20].min()) == 1.0
    torch.testing.assert_close(inputs.masks[0] + inputs.masks[1], torch.ones_like(inputs.masks[0]))
    with pytest.raises(OptionError, match="the content has no alpha channel"):
        decode_inputs(content, [style, style], auto_masks="alpha")
    with pytest.raises(OptionError, match="3 style images"):
        alpha_masks(np.zeros((2, 2), np.uint8), 3)


def test_kmeans_masks_are_colour_regions_largest_first() -> None:
    image = torch.zeros(1, 3, 20, 30)
    image[:, 0, :, :20] = 1.0  # red on two thirds
    image[:, 2, :, 20:] = 1.0  # blue on a third
    masks = kmeans_masks(image, 2)
    assert [float(m.sum()) for m in masks] == [400.0, 200.0]
    assert float(masks[0][..., :20].min()) == 1.0 and float(masks[1][..., 20:].min()) == 1.0


def test_kmeans_needs_one_style_per_region(tiny_pair: tuple[Path, Path]) -> None:
    content, style = tiny_pair
    with pytest.raises(OptionError, match="3 regions for 2 style images"):
        decode_inputs(content, [style, style], auto_masks="kmeans:3")


def test_protect_faces_names_the_extra_when_opencv_is_missing(
    tiny_pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    content, style = tiny_pair
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(OptionError, match=r"gatys-styletransfer\[faces\]") as info:
        decode_inputs(content, style, protect_faces=True)
    assert info.value.option == "protect_faces"


def test_protect_faces_reports_how_many_faces_it_found(tiny_pair: tuple[Path, Path]) -> None:
    pytest.importorskip("cv2")
    from styletransfer.pipeline import FacesProtected

    content, style = tiny_pair
    with pytest.warns(FacesProtected, match="0 faces found"):
        inputs = decode_inputs(content, style, protect_faces=True)
    assert inputs.masks is None


# --- Luminance-only transfer --------------------------------------------------------------------


def _w1(a: torch.Tensor, b: torch.Tensor) -> float:
    """The 1-Wasserstein distance between two value distributions (their quantile functions' mean gap)."""
    q = np.linspace(0, 1, 201)
    return float(np.abs(np.quantile(a.flatten().numpy(), q) - np.quantile(b.flatten().numpy(), q)).mean())


@pytest.mark.slow
def test_luminance_only_keeps_the_content_chroma_and_moves_the_luminance_toward_the_style(
    tubingen: Path, starry: Path
) -> None:
    from styletransfer.color import match_luminance, rgb_to_ycbcr
    from styletransfer.images import to_tensor

    out = api.stylize(tubingen, starry, preserve_colors="luminance-only", size=64, steps=30, device="cpu")
    content, style = _as_run(tubingen, 64), _as_run(starry, 64)
    yo, yc = rgb_to_ycbcr(to_tensor(out)), rgb_to_ycbcr(content)
    gap = (yo[:, 1:] - yc[:, 1:]).abs() * 255
    assert float(gap.mean()) < 0.5 and float(gap.flatten().quantile(0.99)) < 1.0  # 8-bit rounding; rare clamps
    target = match_luminance(style, content)[:, :1]  # the style's luminance as the run sees it
    assert _w1(yo[:, :1], target) < 0.85 * _w1(yc[:, :1], target)
    raw = rgb_to_ycbcr(style)[:, :1]
    assert _w1(yo[:, :1], raw) < _w1(yc[:, :1], raw)


def test_luminance_only_optimises_grey_images(tiny_pair: tuple[Path, Path]) -> None:
    from styletransfer.pipeline import objective_at, resolve_settings

    content, style = tiny_pair
    settings = resolve_settings("fast", device="cpu", size=32, preserve_colors="luminance-only")
    _, c, s = objective_at(decode_inputs(content, style), settings, 32)
    for image in (c, s[0]):
        assert torch.equal(image[:, 0], image[:, 1]) and torch.equal(image[:, 1], image[:, 2])
    from styletransfer.color import rgb_to_ycbcr

    yc = rgb_to_ycbcr(c)[:, 0]
    ys = rgb_to_ycbcr(s[0])[:, 0]
    assert abs(float(ys.mean() - yc.mean())) < 0.02 and abs(float(ys.std() - yc.std())) < 0.02


# --- Scale mixing -------------------------------------------------------------------------------


def test_fine_style_takes_the_fine_texture_of_one_image_and_the_coarse_structure_of_the_other(
    tubingen: Path, starry: Path
) -> None:
    from styletransfer.examples import example_path
    from styletransfer.images import load_img
    from styletransfer.pipeline import mixed_style, resolve_settings

    settings = resolve_settings("fast", device="cpu", size=48)
    style, fine = load_img(starry, 48), load_img(example_path("the_scream.jpg"), 48)
    mixed = mixed_style(settings, style, fine, evaluations=30)
    assert mixed.shape == style.shape
    vgg = get_vgg()
    with torch.no_grad():
        f = {
            k: vgg(preprocess(t), ["block1_conv1", "block4_conv1"])
            for k, t in (("m", mixed), ("s", style), ("f", fine))
        }

    def dist(a: str, b: str, layer: str) -> float:
        return float(((gram_matrix(f[a][layer]) - gram_matrix(f[b][layer])) ** 2).mean())

    assert dist("m", "f", "block1_conv1") < 0.5 * dist("s", "f", "block1_conv1")  # fine texture: the fine image's
    assert dist("m", "s", "block4_conv1") < dist("m", "f", "block4_conv1")  # coarse structure: the style's


def test_fine_style_runs_end_to_end(tmp_path: Path, tiny_pair: tuple[Path, Path], starry: Path) -> None:
    content, style = tiny_pair
    out = tmp_path / "o.png"
    job = make_job(content, style, out, fine_style=str(starry), size=32, steps=2, device="cpu")
    from styletransfer.runner import run_job

    assert run_job(job).status == "complete" and Image.open(out).size == (32, 24)


def test_a_run_with_fine_style_leaves_its_inputs_as_they_were(tiny_pair: tuple[Path, Path], starry: Path) -> None:
    from dataclasses import fields

    from styletransfer.pipeline import optimize, resolve_settings

    content, style = tiny_pair
    inputs = decode_inputs(content, style, fine_style=starry)
    before = {f.name: getattr(inputs, f.name) for f in fields(inputs)}
    pixels = [t.clone() for t in inputs.style_pixels]
    outcome = optimize(inputs, resolve_settings("fast", size=32, steps=2, device="cpu"))
    assert outcome.status == "complete"
    assert all(getattr(inputs, name) is value for name, value in before.items())  # not one field rebound
    assert all(torch.equal(a, b) for a, b in zip(inputs.style_pixels, pixels))  # nor a pixel changed
    assert inputs.fine_style is not None


def test_a_manifest_records_the_masks_and_a_rerun_uses_them(tmp_path: Path, tiny_pair: tuple[Path, Path]) -> None:
    import json

    content, style = tiny_pair
    m = _save(tmp_path, "m.png", _half(48, 64))
    out, again = tmp_path / "out.png", tmp_path / "again.png"
    argv = [str(content), str(style), "-o", str(out), "--masks", str(m), "--mask-mode", "inside"]
    assert main([*argv, "--size", "32", "--steps", "3", "--device", "cpu", "--manifest", "--quiet"]) == 0
    data = json.loads((tmp_path / "out.png.json").read_text())
    assert data["inputs"]["regions"]["masks"][0]["path"] == str(m.resolve())
    assert main(["rerun", str(tmp_path / "out.png.json"), "-o", str(again), "--quiet"]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))
    m.write_bytes(b"changed")
    assert main(["rerun", str(tmp_path / "out.png.json"), "-o", str(tmp_path / "third.png"), "--quiet"]) == 2


def test_found_faces_are_taken_out_of_every_region(
    tmp_path: Path, tiny_pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import styletransfer.pipeline.inputs as pipeline

    content, style = tiny_pair

    def one_face(image: torch.Tensor) -> tuple[torch.Tensor, int]:
        box = torch.zeros(1, 1, image.shape[-2], image.shape[-1])
        box[..., 10:20, 30:40] = 1.0
        return box, 1

    monkeypatch.setattr(pipeline, "face_mask", one_face)
    with pytest.warns(pipeline.FacesProtected, match="1 face found, kept as in the content"):
        alone = decode_inputs(content, [style, style], protect_faces=True)
    assert alone.masks is not None and len(alone.masks) == 1  # one region for the blended styles
    assert float(alone.masks[0][..., 10:20, 30:40].max()) == 0.0 and float(alone.masks[0].sum()) == 48 * 64 - 100
    m = _save(tmp_path, "m.png", _half(48, 64))
    with pytest.warns(pipeline.FacesProtected):
        both = decode_inputs(content, [style, style], masks=[m, m], protect_faces=True)
    assert both.masks is not None and all(float(t[..., 10:20, 30:40].max()) == 0.0 for t in both.masks)
