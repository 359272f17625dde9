"""The memory guard: a run that will not fit is refused before it starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from styletransfer import memory
from styletransfer.cli import main
from styletransfer.errors import OptionError
from styletransfer.presets import FAST, TUTORIAL


def test_estimate_follows_the_measured_line() -> None:
    # The measured basis (bench/benchmarks/highres.py, without L-BFGS history): 1.0, 2.5, 8.1 GiB.
    for (h, w), measured in (((384, 512), 1.0), ((768, 1024), 2.5), ((1536, 2048), 8.1)):
        model = memory.BASE_BYTES + memory.BYTES_PER_PIXEL * h * w
        assert model / 2**30 == pytest.approx(measured, rel=0.1)
    # L-BFGS adds its history (bounded by history_mib); Adam does not.
    assert (
        memory.estimate_bytes(FAST, 384, 512) - memory.estimate_bytes(TUTORIAL, 384, 512) == 2 * 50 * 3 * 384 * 512 * 4
    )
    big = FAST.with_overrides(size=2048)
    assert memory.estimate_bytes(big, 1536, 2048) < memory.estimate_bytes(
        big.with_overrides(history_mib=10**6), 1536, 2048
    )


def test_refusal_names_the_largest_size_that_fits() -> None:
    preset = FAST.with_overrides(size=4096)
    free = 4 * 2**30
    with pytest.raises(
        OptionError,
        match=r"size 4096 needs about .* GiB .* 4\.0 GiB are available; the largest size that fits is about size (\d+)",
    ) as info:
        memory.check_memory(preset, 3072, 4096, torch.device("cpu"), available=free)
    assert info.value.option == "size"
    assert info.value.render(lambda name: f"--{name}").startswith("--size 4096 needs about")
    fits = int(str(info.value).rsplit(" ", 1)[1])
    assert (
        memory.estimate_bytes(preset, int(fits * 0.75), fits)
        <= free
        < memory.estimate_bytes(preset, int((fits + 1) * 0.75), fits + 1)
    )
    memory.check_memory(FAST, 384, 512, torch.device("cpu"), available=free)  # fits: no error


def test_available_memory_is_read() -> None:
    free = memory.available_bytes(torch.device("cpu"))
    assert free is None or free > 0


def test_cli_refuses_before_allocating(
    tiny_pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda device: 2 * 2**30)
    content, style = tiny_pair
    out = tmp_path / "o.png"
    assert main([str(content), str(style), "-o", str(out), "--size", "3000", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "--size 3000 needs about" in err and "largest size that fits" in err and not out.exists()
