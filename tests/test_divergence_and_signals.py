"""Divergence and stop signals, shown by injecting a real NaN and sending real signals.

Divergence: Adam goes back to the last finite image and halves its learning
rate once; a second divergence (or any divergence of L-BFGS) stops the run
with exit code 1 and the last finite image in the output.  A NaN image is never
written.  Signals: SIGINT and SIGTERM sent to a running ``styletransfer``
process write the image so far and exit with 130 and 143.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer import stylize
from styletransfer.cli import main
from styletransfer.losses import Objective
from styletransfer.optimize import Diverged, KerasAdam, LearningRateLowered, Progress


@pytest.fixture
def nan_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[int]]:
    """Make the objective's style term NaN (gradient too) at the evaluations numbered in the set."""
    steps: set[int] = set()
    calls = [0]
    real = Objective.terms

    def terms(self: Objective, image: torch.Tensor) -> dict[str, torch.Tensor]:
        calls[0] += 1
        t = real(self, image)
        if calls[0] in steps:
            t["style"] = t["style"] * float("nan")
        return t

    monkeypatch.setattr(Objective, "terms", terms)
    return steps


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _run(argv: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_adam_halves_its_learning_rate_once_and_goes_on(
    nan_at: set[int], tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nan_at.add(4)
    content, style = tiny_pair
    out, log = tmp_path / "out.png", tmp_path / "log.csv"
    argv = [
        content,
        style,
        "-o",
        out,
        "--preset",
        "tutorial",
        "--size",
        32,
        "--steps",
        8,
        "--save-every",
        1,
        "--log",
        log,
    ]
    code, err = _run(argv, capsys)
    assert code == 0
    notes = [line for line in err.splitlines() if "note:" in line]
    assert notes == [
        "styletransfer: note: the loss became NaN or infinite at step 4; going on from the last finite image "
        "with the learning rate halved to 0.01"
    ]
    losses = [float(r["loss"]) for r in csv.DictReader(log.open())]
    assert len(losses) == 8 and math.isnan(losses[3]) and all(math.isfinite(v) for i, v in enumerate(losses) if i != 3)
    assert losses[4] == losses[2]  # step 5 evaluates step 3's image again
    assert not (tmp_path / "out.step00004.png").exists()  # no snapshot of the NaN step
    assert np.array_equal(_pixels(tmp_path / "out.step00005.png"), _pixels(tmp_path / "out.step00003.png"))
    assert losses[-1] < losses[0]


def test_adam_diverging_twice_stops_with_the_last_finite_image(
    nan_at: set[int], tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nan_at.update({4, 5})
    content, style = tiny_pair
    out = tmp_path / "out.png"
    out.write_bytes(b"an earlier result")
    argv = [content, style, "-o", out, "--preset", "tutorial", "--size", 32, "--steps", 8, "--save-every", 1, "-q"]
    code, err = _run(argv, capsys)
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"styletransfer: error: the loss became NaN or infinite at step 5; the last finite image is in {out}. "
        "Try a lower --lr."
    )
    assert "Traceback" not in err
    written = _pixels(out)
    assert np.array_equal(written, _pixels(tmp_path / "out.step00003.png"))  # the last finite image
    assert not np.array_equal(written, _pixels(tmp_path / "out.step00002.png"))
    assert sorted(p.name for p in tmp_path.glob("out.step*")) == [f"out.step0000{i}.png" for i in (1, 2, 3)]


def test_a_nan_image_is_caught_and_the_update_redone_with_half_the_rate(
    tiny_pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The image itself becomes NaN after the third update; the fourth evaluation sees it.
    calls: list[tuple[int, float]] = []
    real_step = KerasAdam.step

    def poisoned(self: KerasAdam, x: torch.Tensor, grad: torch.Tensor) -> None:
        calls.append((self.t, self.lr))
        real_step(self, x, grad)
        if len(calls) == 3:
            x.fill_(float("nan"))

    monkeypatch.setattr(KerasAdam, "step", poisoned)
    content, style = tiny_pair
    seen: list[Progress] = []
    with pytest.warns(LearningRateLowered, match="at step 4; going on from the last finite image"):
        image = stylize(content, style, preset="tutorial", size=32, steps=7, device="cpu", callback=seen.append)
    assert [p.step for p in seen] == list(range(1, 8))
    assert math.isnan(seen[3].loss) and all(math.isfinite(p.loss) for p in seen if p.step != 4)
    assert torch.equal(seen[4].tensor(), seen[2].tensor())  # back to the image before the bad update
    # The bad update (the third, from t=2) is redone from the same state, at half the rate.
    assert calls == [(0, 0.02), (1, 0.02), (2, 0.02), (2, 0.01), (3, 0.01), (4, 0.01)]
    assert np.isfinite(np.asarray(image, dtype=np.float32)).all()


def test_lbfgs_divergence_stops_with_the_best_image(
    nan_at: set[int], tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nan_at.add(5)
    content, style = tiny_pair
    out, log = tmp_path / "out.png", tmp_path / "log.csv"
    argv = [
        content,
        style,
        "-o",
        out,
        "--preset",
        "fast",
        "--size",
        32,
        "--steps",
        10,
        "--save-every",
        1,
        "--log",
        log,
        "-q",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", LearningRateLowered)  # L-BFGS does not back off
        code, err = _run(argv, capsys)
    assert code == 1 and "the loss became NaN or infinite at step 5" in err
    losses = [float(r["loss"]) for r in csv.DictReader(log.open())]
    assert len(losses) == 5 and math.isnan(losses[4])
    best = 1 + int(np.argmin(losses[:4]))
    assert np.array_equal(_pixels(out), _pixels(tmp_path / f"out.step{best:05d}.png"))


def test_api_raises_diverged_with_a_finite_image(nan_at: set[int], tiny_pair: tuple[Path, Path]) -> None:
    nan_at.update({1, 2})  # diverged before any update: the last finite image is the start
    content, style = tiny_pair
    with pytest.warns(LearningRateLowered), pytest.raises(Diverged) as info:
        stylize(content, style, preset="tutorial", size=32, steps=5, device="cpu")
    assert info.value.step == 2 and bool(torch.isfinite(info.value.image).all())
    from styletransfer.images import load_img

    torch.testing.assert_close(info.value.image, load_img(content, 32))


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_real_signal_writes_the_image_so_far(
    signum: int, code: int, tiny_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    content, style = tiny_pair
    out = tmp_path / "out.png"
    argv = [
        sys.executable,
        "-m",
        "styletransfer",
        str(content),
        str(style),
        "-o",
        str(out),
        "--preset",
        "tutorial",
        "--size",
        "32",
        "--steps",
        "100000",
        "--save-every",
        "1",
        "--device",
        "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "out.step00002.png").exists():  # the loop is running
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("interrupted at step")]
    assert lines and lines[-1].endswith(f": the image so far is in {out}")
    step = int(lines[-1].split()[3].rstrip(":"))
    assert 2 <= step < 100000
    with Image.open(out) as im:
        assert im.size == (32, 24) and im.mode == "RGB"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
