"""Creative controls: several styles, colours, style scale, init, pooling, layers, alpha, coarse-to-fine."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer import api, color, pipeline
from styletransfer.cli import main
from styletransfer.errors import OptionError
from styletransfer.images import load_img, read_alpha
from styletransfer.losses import Objective, Weights, gram_matrix
from styletransfer.memory import lbfgs_history
from styletransfer.presets import PRESETS, SEED_CONTENT_LAYERS, SEED_STYLE_LAYERS
from styletransfer.vgg import AVG_POOL_SCALE, get_vgg, preprocess

README = Path(__file__).resolve().parent.parent / "README.md"


def build_objective(content: torch.Tensor, styles: list[torch.Tensor], **kw: object) -> Objective:
    return Objective(
        get_vgg(),
        content,
        styles,
        weights=Weights(),
        content_layers=SEED_CONTENT_LAYERS,
        style_layers=SEED_STYLE_LAYERS,
        **kw,
    )  # type: ignore[arg-type]


@pytest.fixture
def tensors(tiny_pair: tuple[Path, Path]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    content, style = tiny_pair
    c, s = load_img(content, 32), load_img(style, 32)
    return c, s, s.flip(-1).roll(7, dims=-2) * 0.8


def test_blend_one_zero_is_the_first_style_alone(tensors: tuple[torch.Tensor, ...]) -> None:
    c, s1, s2 = tensors
    alone = build_objective(c, [s1])
    blended = build_objective(c, [s1, s2], style_blend=(1.0, 0.0))
    for name in SEED_STYLE_LAYERS:
        torch.testing.assert_close(blended.style_targets[name], alone.style_targets[name], rtol=0, atol=0)


def test_blend_mixes_gram_targets_by_normalised_weight(tensors: tuple[torch.Tensor, ...]) -> None:
    c, s1, s2 = tensors
    mixed = build_objective(c, [s1, s2], style_blend=(7, 3))
    feats1 = get_vgg()(preprocess(s1), ["block2_conv1"])["block2_conv1"]
    feats2 = get_vgg()(preprocess(s2), ["block2_conv1"])["block2_conv1"]
    expected = 0.7 * gram_matrix(feats1) + 0.3 * gram_matrix(feats2)
    torch.testing.assert_close(mixed.style_targets["block2_conv1"], expected, rtol=1e-5, atol=1e-3)
    equal = build_objective(c, [s1, s2])
    torch.testing.assert_close(
        equal.style_targets["block2_conv1"], 0.5 * (gram_matrix(feats1) + gram_matrix(feats2)), rtol=1e-5, atol=1e-3
    )
    with pytest.raises(ValueError, match="one per style"):
        build_objective(c, [s1, s2], style_blend=(1.0,))
    with pytest.raises(ValueError, match="not all 0"):
        build_objective(c, [s1, s2], style_blend=(0.0, 0.0))


def test_style_layer_weights_scale_each_term(tensors: tuple[torch.Tensor, ...]) -> None:
    c, s, _ = tensors
    x = c.flip(-1)
    only_first = build_objective(c, [s], style_layer_weights=(2.0, 0, 0, 0, 0)).terms(x)["style"]
    feats = get_vgg()(preprocess(x), ["block1_conv1"])["block1_conv1"]
    target = gram_matrix(get_vgg()(preprocess(s), ["block1_conv1"])["block1_conv1"])
    expected = 2.0 * 1e-2 / 5 * torch.mean((gram_matrix(feats) - target) ** 2)
    assert float(only_first) == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match="one per layer"):
        build_objective(c, [s], style_layer_weights=(1.0, 2.0))


def test_average_pooling_is_rescaled(tensors: tuple[torch.Tensor, ...]) -> None:
    c, _, _ = tensors
    x = preprocess(c)
    pre = get_vgg()(x, ["block1_conv2"], "avg")["block1_conv2"]
    pooled = get_vgg()(x, ["block1_pool"], "avg")["block1_pool"]
    torch.testing.assert_close(pooled, torch.nn.functional.avg_pool2d(pre, 2) * AVG_POOL_SCALE["block1_pool"])
    maxed = get_vgg()(x, ["block3_conv1"], "max")["block3_conv1"]
    avg = get_vgg()(x, ["block3_conv1"], "avg")["block3_conv1"]
    assert not torch.allclose(maxed, avg)
    ratio = float(avg.mean() / maxed.mean())
    assert 0.5 < ratio < 2.0  # magnitudes stay comparable
    with pytest.raises(ValueError, match="pooling"):
        get_vgg()(x, ["block1_pool"], "min")


def test_histogram_mode_matches_mean_and_covariance(tensors: tuple[torch.Tensor, ...]) -> None:
    c, s, _ = tensors
    out = color.match_color(s, c)
    o, t = out[0].reshape(3, -1).double(), c[0].reshape(3, -1).double()
    torch.testing.assert_close(o.mean(1), t.mean(1), rtol=0, atol=1e-5)
    torch.testing.assert_close(torch.cov(o, correction=0), torch.cov(t, correction=0), rtol=0, atol=1e-5)


def test_ycbcr_round_trip_and_pillow_agreement(rng: np.random.Generator) -> None:
    arr = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    t = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255
    ycc = color.rgb_to_ycbcr(t)
    pil = np.asarray(Image.fromarray(arr).convert("YCbCr"), dtype=np.float32) / 255
    np.testing.assert_allclose(ycc[0].permute(1, 2, 0).numpy(), pil, atol=1.01 / 255)
    torch.testing.assert_close(color.ycbcr_to_rgb(ycc), t, rtol=0, atol=1e-5)


def test_luminance_mode_keeps_the_content_chroma(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = tiny_pair
    out = tmp_path / "lum.png"
    assert (
        main(
            [
                str(content),
                str(style),
                "-o",
                str(out),
                "--preset",
                "tutorial",
                "--size",
                "64",
                "--steps",
                "3",
                "--preserve-colors",
                "luminance",
                "-q",
            ]
        )
        == 0
    )
    got = np.asarray(Image.open(out).convert("YCbCr"), dtype=np.float32)
    want = np.asarray(Image.open(content).convert("YCbCr"), dtype=np.float32)  # same 64x48 size
    diff = np.abs(got[..., 1:] - want[..., 1:])
    assert np.median(diff) <= 1.0 and np.mean(diff <= 1.0) > 0.97  # equal within 8-bit rounding, but for clipped pixels
    plain = tmp_path / "plain.png"
    assert (
        main([str(content), str(style), "-o", str(plain), "--preset", "tutorial", "--size", "64", "--steps", "3", "-q"])
        == 0
    )
    luma = lambda p: np.asarray(Image.open(p).convert("YCbCr"), dtype=np.float32)[..., 0]  # noqa: E731
    assert np.abs(luma(out) - luma(plain)).mean() < 1.5  # the stylised luminance is kept


def test_style_scale_changes_the_style_targets_size(tiny_pair: tuple[Path, Path]) -> None:
    content, style = tiny_pair
    c = load_img(content, 64)
    inputs = pipeline.decode_inputs(content, style)
    for scale, side in ((0.5, 32), (1.0, 64), (2.0, 128)):
        settings = pipeline.resolve_settings("tutorial", device="cpu", size=64, style_scale=scale)
        (s,) = pipeline.styles_at(inputs, 64, settings.preset, c)
        assert max(s.shape[-2:]) == side
    with pytest.raises(OptionError, match="need 16 at least") as info:
        pipeline.styles_at(inputs, 64, pipeline.resolve_settings("tutorial", style_scale=0.1).preset, c)
    assert info.value.option == "style_scale"
    with pytest.raises(OptionError, match="style_scale: must be > 0"):
        pipeline.resolve_settings("tutorial", style_scale=0.0)


def test_inits(tensors: tuple[torch.Tensor, ...], tmp_path: Path) -> None:
    c, s, _ = tensors

    def start(init: str, seed: int) -> torch.Tensor:
        settings = pipeline.resolve_settings("tutorial", device="cpu", size=64, steps=1, init=init, seed=seed)
        return pipeline.initial_image(settings, c, s)

    assert torch.equal(start("content", 0), c)
    noise = start("noise", 3)
    assert torch.equal(noise, start("noise", 3)) and not torch.equal(noise, start("noise", 4))
    style_init = start("style", 0)
    assert style_init.shape == c.shape and not torch.equal(style_init, c)


def test_alpha_survives_byte_for_byte(tiny_pair: tuple[Path, Path], tmp_path: Path, rng: np.random.Generator) -> None:
    content, style = tiny_pair
    rgba = Image.open(content).convert("RGBA")
    alpha = rng.integers(0, 256, (48, 64), dtype=np.uint8)
    rgba.putalpha(Image.fromarray(alpha, "L"))
    src = tmp_path / "rgba.png"
    rgba.save(src)
    for ext in ("png", "webp"):
        out = tmp_path / f"out.{ext}"
        assert (
            main([str(src), str(style), "-o", str(out), "--preset", "tutorial", "--size", "64", "--steps", "1", "-q"])
            == 0
        )
        with Image.open(out) as im:
            assert im.mode == "RGBA"
            assert np.array_equal(np.asarray(im)[..., 3], alpha), ext
    assert np.array_equal(read_alpha(src), alpha)
    # Resized outputs carry a resized alpha; JPEG drops it with a note.
    small = api.stylize(src, style, preset="tutorial", size=32, steps=1, device="cpu")
    assert small.mode == "RGBA" and small.size == (32, 24)


def test_jpeg_output_notes_dropped_alpha(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    la = tmp_path / "la.png"
    Image.open(content).convert("LA").save(la)
    assert (
        main(
            [str(la), str(style), "-o", str(tmp_path / "o.jpg"), "--preset", "tutorial", "--size", "32", "--steps", "1"]
        )
        == 0
    )
    assert "no alpha" in capsys.readouterr().err


def test_cli_every_control(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = tiny_pair
    second = tmp_path / "second.png"
    Image.open(style).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(second)
    out = tmp_path / "o.png"
    code = main(
        [
            str(content),
            str(style),
            str(second),
            "-o",
            str(out),
            "--preset",
            "tutorial",
            "--size",
            "32",
            "--steps",
            "2",
            "--style-blend",
            "0.7",
            "0.3",
            "--preserve-colors",
            "histogram",
            "--style-scale",
            "1.5",
            "--init",
            "style",
            "--pooling",
            "avg",
            "--content-layers",
            "block4_conv2",
            "--style-layers",
            "block1_conv1",
            "block2_conv1",
            "--style-layer-weights",
            "1",
            "0.5",
            "-q",
        ]
    )
    assert code == 0 and Image.open(out).size == (32, 24)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--style-blend", "1", "2"], "2 weights for 1 style images"),
        (["--style-layer-weights", "1", "2"], "2 weights for 5"),
        (["--style-layers", "block1_conv9"], "unknown VGG19 layer"),
        (["--content-layers", "nope"], "unknown VGG19 layer"),
        (["--style-scale", "0"], "argument --style-scale: must be > 0, not 0"),
    ],
)
def test_cli_control_errors(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    content, style = tiny_pair
    try:
        code = main([str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "32", "--steps", "1", *args])
    except SystemExit as exc:  # argparse's own checks exit at once
        code = int(exc.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err


def test_stage_sizes_and_bounded_history() -> None:
    fast = PRESETS["fast"]
    assert pipeline.stage_sizes(fast) == [512]
    assert pipeline.stage_sizes(fast.with_overrides(size=1024)) == [512, 1024]
    assert pipeline.stage_sizes(fast.with_overrides(size=2048)) == [512, 1024, 2048]
    assert pipeline.stage_sizes(fast.with_overrides(size=1500)) == [512, 1024, 1500]
    assert pipeline.stage_sizes(PRESETS["tutorial"].with_overrides(size=2048)) == [2048]
    assert lbfgs_history(fast, 3 * 512 * 384) == 50
    at_2048 = lbfgs_history(fast, 3 * 2048 * 1536)
    assert at_2048 == 1024 * 2**20 // (8 * 3 * 2048 * 1536) == 14


def test_coarse_to_fine_run(tiny_pair: tuple[Path, Path]) -> None:
    content, style = tiny_pair
    preset = PRESETS["fast"].with_overrides(size=80, coarse_size=32, steps=3, refine_steps=2)
    seen: list[tuple[int, int, int]] = []
    image = api.stylize(
        content, style, preset=preset, device="cpu", callback=lambda p: seen.append((p.step, p.total, p.size))
    )
    assert image.size == (80, 60)
    assert [s for s, _, _ in seen] == list(range(1, 8)) and {t for _, t, _ in seen} == {7}
    assert [z for _, _, z in seen] == [32, 32, 32, 64, 64, 80, 80]


def _readme_presets_table() -> dict[str, dict[str, str]]:
    lines = [ln for ln in README.read_text().splitlines() if ln.startswith("| ")]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| field |"))
    header = [h.strip(" `") for h in lines[start].strip("|").split("|")]
    table: dict[str, dict[str, str]] = {}
    for ln in lines[start + 1 :]:
        cells = [c.strip(" `") for c in ln.strip("|").split("|")]
        if len(cells) != len(header):
            break
        table[cells[0]] = dict(zip(header[1:], cells[1:]))
    return table


def test_readme_presets_table_lists_every_number() -> None:
    table = _readme_presets_table()
    for preset in PRESETS.values():
        for f in fields(preset):
            if f.name in ("name", "description"):
                continue
            cell = table[f.name][preset.name]
            value = getattr(preset, f.name)
            if isinstance(value, tuple):
                value = ", ".join(map(str, value)) or None
            assert cell == str(value) or (value is None and cell == "-"), (preset.name, f.name, cell, value)
