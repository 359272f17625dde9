"""The inspection commands: stats, figures, and --figures on the main command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from styletransfer.cli import main
from styletransfer.inspection import layer_stats


def test_stats_json_keys_shapes_and_values(tiny_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    content, _ = tiny_pair
    assert main(["stats", str(content), "--size", "64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == [
        "block1_conv1",
        "block2_conv1",
        "block3_conv1",
        "block4_conv1",
        "block5_conv1",
        "block5_conv2",
    ]
    assert data["block1_conv1"]["shape"] == [1, 48, 64, 64]  # (batch, H, W, C)
    assert data["block5_conv2"]["shape"] == [1, 3, 4, 512]
    assert set(data["block2_conv1"]) == {"shape", "min", "max", "mean"}
    assert data == json.loads(json.dumps(layer_stats(content, size=64)))


def test_stats_gram_layers_and_preprocess(tiny_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    content, _ = tiny_pair
    assert (
        main(["stats", str(content), "--size", "32", "--gram", "--layers", "block3_conv1", "block1_conv2", "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["block3_conv1", "block1_conv2"] and data["block3_conv1"]["shape"] == [1, 256, 256]
    assert data["block1_conv2"] == layer_stats(content, ["block1_conv2"], gram=True, size=32)["block1_conv2"]
    assert main(["stats", str(content), "--size", "32", "--layers", "block1_conv1", "--preprocess", "--json"]) == 0
    pre = json.loads(capsys.readouterr().out)["block1_conv1"]
    assert pre == layer_stats(content, ["block1_conv1"], size=32, preprocessed=True)["block1_conv1"]
    assert (
        main(["stats", str(content), "--size", "32", "--gram", "--no-preprocess", "--layers", "block1_conv1", "--json"])
        == 0
    )
    raw = json.loads(capsys.readouterr().out)["block1_conv1"]
    assert raw == layer_stats(content, ["block1_conv1"], gram=True, size=32, preprocessed=False)["block1_conv1"]


def test_stats_text_like_the_seed(tiny_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    content, _ = tiny_pair
    assert main(["stats", str(content), "--size", "32", "--layers", "block2_conv1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "block2_conv1"
    assert out[1] == "  shape:  (1, 12, 16, 128)"
    assert out[2].startswith("  min:  ") and out[3].startswith("  max:  ") and out[4].startswith("  mean:  ")


def test_stats_unknown_layer_is_a_usage_error(tiny_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(tiny_pair[0]), "--layers", "block9_conv9"]) == 2
    assert "unknown VGG19 layer 'block9_conv9'" in capsys.readouterr().err


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def test_figures_command_every_option(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    snaps = []
    for step in (5, 10):
        snap = tmp_path / f"out.step{step:05d}.png"
        Image.open(content).save(snap)
        snaps.append(str(snap))
    log = tmp_path / "log.csv"
    log.write_text("step,size,loss,style,content,tv,elapsed\n1,32,9,5,0,4,0.1\n2,32,7,4,1,2,0.2\n")
    out = tmp_path / "figs"
    code = main(
        [
            "figures",
            str(content),
            str(style),
            "-o",
            str(out),
            "--result",
            str(style),
            "--snapshots",
            *snaps,
            "--log",
            str(log),
            "--size",
            "32",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == ["inputs.png", "highpass.png", "sobel.png", "progress.png", "loss.png"]
    assert _size(out / "highpass.png") == (1400, 1000) and _size(out / "progress.png")[0] == 640


def test_figures_command_minimal(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    assert main(["figures", str(content), str(style), "-o", str(tmp_path / "f"), "--size", "32"]) == 0
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["inputs.png", "sobel.png"]
    assert main(["figures", str(content), str(style), "-o", str(tmp_path / "g"), "--log", str(content)]) == 2
    assert "not a styletransfer log" in capsys.readouterr().err


def test_run_with_figures(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = tiny_pair
    out, figs = tmp_path / "out.png", tmp_path / "figs"
    code = main(
        [
            str(content),
            str(style),
            "-o",
            str(out),
            "--preset",
            "tutorial",
            "--size",
            "32",
            "--steps",
            "4",
            "--figures",
            str(figs),
            "--figures-every",
            "2",
            "-q",
        ]
    )
    assert code == 0 and out.exists()
    assert sorted(p.name for p in figs.iterdir()) == [
        "highpass.png",
        "inputs.png",
        "loss.png",
        "progress.png",
        "sobel.png",
    ]
    assert _size(figs / "progress.png")[0] == 640  # two thumbnails (steps 2 and 4), 3.2 inches each


def test_run_with_figures_default_every(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = tiny_pair
    figs = tmp_path / "figs"
    code = main(
        [
            str(content),
            str(style),
            "-o",
            str(tmp_path / "o.png"),
            "--preset",
            "tutorial",
            "--size",
            "32",
            "--steps",
            "20",
            "--figures",
            str(figs),
            "-q",
        ]
    )
    assert code == 0
    assert _size(figs / "progress.png")[0] == 1600  # a tenth of 20 steps: 10 thumbnails, 5 per row


def test_stats_weights_and_device_options(tiny_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from styletransfer.vgg import default_weights_path

    content, _ = tiny_pair
    args = ["stats", str(content), "--size", "32", "--layers", "block1_conv1", "--json"]
    assert main([*args, "--weights", str(default_weights_path()), "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out) == layer_stats(content, ["block1_conv1"], size=32)
    assert main([*args, "--device", "cuda"]) == (0 if __import__("torch").cuda.is_available() else 2)
