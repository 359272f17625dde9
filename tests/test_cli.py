"""The command line, run in-process, every option branch."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from styletransfer import loss_terms, optimize
from styletransfer.cli import COMMANDS, main


def _run(*args: object) -> int:
    return main([str(a) for a in args])


def test_run_with_every_option(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = tiny_pair
    out, log = tmp_path / "out.png", tmp_path / "log.csv"
    code = _run(
        content,
        style,
        "-o",
        out,
        "--preset",
        "tutorial",
        "--size",
        48,
        "--steps",
        4,
        "--lr",
        0.03,
        "--style-weight",
        0.02,
        "--content-weight",
        1e3,
        "--tv-weight",
        10,
        "--init",
        "noise",
        "--seed",
        3,
        "--device",
        "cpu",
        "--save-every",
        2,
        "--log",
        log,
        "--quiet",
    )
    assert code == 0
    assert Image.open(out).size == (48, 36)
    rows = list(csv.DictReader(log.open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert set(rows[0]) == {"step", "size", "loss", "style", "content", "tv", "elapsed"}
    assert sorted(p.name for p in tmp_path.glob("out.step*.png")) == ["out.step00002.png", "out.step00004.png"]


def test_run_with_progress_bar_and_image_init(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    out = tmp_path / "out.jpg"
    assert _run(content, style, "-o", out, "--size", 32, "--steps", 2, "--init", style, "--device", "cpu") == 0
    err = capsys.readouterr().err
    assert "2/2" in err and "loss=" in err and f"wrote {out}" in err
    assert Image.open(out).format == "JPEG"


def test_weights_option_takes_a_keras_h5(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    from styletransfer.vgg import load_weights
    from tests.test_vgg import _write_keras_h5

    pytest.importorskip("h5py")
    h5 = tmp_path / "w.h5"
    _write_keras_h5(h5, {n: (w.permute(2, 3, 1, 0).numpy(), b.numpy()) for n, (w, b) in load_weights(None).items()})
    content, style = tiny_pair
    assert _run(content, style, "-o", tmp_path / "o.png", "--size", 32, "--steps", 1, "--weights", h5, "-q") == 0


def test_loss_json_agrees_with_the_api(tiny_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    content, style = tiny_pair
    assert _run("loss", content, style, style, "--size", 64, "--json") == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line
    data = json.loads(line)
    assert list(data) == ["style", "content", "tv", "total"]
    api = loss_terms(style, content, style, size=64)
    for key in data:
        assert data[key] == pytest.approx(api[key], rel=1e-6)
    assert data["total"] == pytest.approx(data["style"] + data["content"] + data["tv"])


def test_loss_table_and_weights(tiny_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    content, style = tiny_pair
    assert (
        _run(
            "loss", content, style, content, "--size", 32, "--tv-weight", 0, "--style-weight", 1, "--content-weight", 1
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "style" in out and "tv  0.000000e+00" in out


def test_demo(tmp_path: Path) -> None:
    out = tmp_path / "demo.webp"
    assert _run("demo", "-o", out, "--size", 32, "--steps", 2, "-q") == 0
    assert Image.open(out).size == (32, 24)


def test_ctrl_c_writes_the_image_and_exits_130(
    tiny_pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_report = optimize.Reporter.__call__

    def interrupt_at_2(self, terms, image):  # type: ignore[no-untyped-def]
        if self.step == 2:
            raise KeyboardInterrupt
        return real_report(self, terms, image)

    monkeypatch.setattr(optimize.Reporter, "__call__", interrupt_at_2)
    content, style = tiny_pair
    out = tmp_path / "out.png"
    assert _run(content, style, "-o", out, "--size", 32, "--steps", 50, "-q") == 130
    assert Image.open(out).size == (32, 24)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jpg", "{style}", "-o", "{tmp}/o.png"], "no such file"),
        (["{content}", "{style}", "-o", "{tmp}/o.gif"], "unsupported output extension"),
        (["{content}", "{style}", "-o", "{content}"], "would overwrite the input"),
        (["{content}", "{style}", "-o", "{tmp}/nodir/o.png"], "does not exist"),
        (["{content}", "{style}", "-o", "{tmp}/o.png", "--weights", "{tmp}/none.bin"], "weights file not found"),
    ],
)
def test_errors_are_one_line(
    args: list[str], message: str, tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    argv = [a.format(content=content, style=style, tmp=tmp_path) for a in args]
    assert main([*argv, "--size", "32", "--steps", "1", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("styletransfer: error:")


@pytest.mark.parametrize(
    "bad",
    [
        ["--steps", "0"],
        ["--size", "-3"],
        ["--style-weight", "nan"],
        ["--tv-weight", "inf"],
        ["--preset", "nope"],
        ["--device", "tpu"],
    ],
)
def test_impossible_options_exit_2(bad: list[str], tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = tiny_pair
    with pytest.raises(SystemExit) as info:
        main([str(content), str(style), "-o", str(tmp_path / "o.png"), *bad])
    assert info.value.code == 2


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_help_does_not_import_torch(command: list[str]) -> None:
    code = (
        "import sys; from styletransfer.cli import main\ntry:\n main(sys.argv[1:] + ['--help'])\n"
        "except SystemExit: pass\nassert 'torch' not in sys.modules, 'torch imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def test_python_dash_m(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "styletransfer", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.startswith("styletransfer ")


def test_sigterm_writes_the_image_and_exits_143(
    tiny_pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal

    real_report = optimize.Reporter.__call__

    def terminate_at_3(self, terms, image):  # type: ignore[no-untyped-def]
        if self.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal, handled by the CLI
        return real_report(self, terms, image)

    monkeypatch.setattr(optimize.Reporter, "__call__", terminate_at_3)
    content, style = tiny_pair
    out = tmp_path / "out.png"
    before = signal.getsignal(signal.SIGTERM)
    assert _run(content, style, "-o", out, "--size", 32, "--steps", 50, "-q") == 143
    assert Image.open(out).size == (32, 24)
    assert signal.getsignal(signal.SIGTERM) == before  # the previous handler is restored


def test_layers_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    from styletransfer import layers

    assert _run("layers") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 22 and lines[1].split() == ["block1_conv1", "64", "1/1", "style"]
    assert lines[-1].split() == ["block5_pool", "512", "1/32"]
    by_name = {line.split()[0]: line.split() for line in lines[1:]}
    assert by_name["block5_conv2"] == ["block5_conv2", "512", "1/16", "content"]
    assert _run("layers", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == layers()
    assert [r["name"] for r in rows if r["role"] == "style"] == [f"block{i}_conv1" for i in range(1, 6)]
    assert {r["name"]: r["factor"] for r in rows}["block4_conv1"] == 8


def test_progress_bar_fills_when_the_stopping_rule_ends_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    """A run stopped by its rule at 3 of at most 10 evaluations ends the bar at 3/3, not 3/10."""
    from types import SimpleNamespace

    from styletransfer.cli.run import _ProgressBar
    from styletransfer.events import JobResult

    bar = _ProgressBar(quiet=False)
    bar.start(SimpleNamespace(total=10))  # type: ignore[arg-type]
    for _ in range(3):
        bar.progress(SimpleNamespace(loss=1.0, size=32))
    bar.end(JobResult("complete", steps=3))
    err = capsys.readouterr().err
    assert "3/3" in err and "100%" in err
    stopped = _ProgressBar(quiet=False)  # interrupted: the bar shows how far it got
    stopped.start(SimpleNamespace(total=10))  # type: ignore[arg-type]
    stopped.progress(SimpleNamespace(loss=1.0, size=32))
    stopped.end(JobResult("interrupted", steps=1))
    assert "1/10" in capsys.readouterr().err
