"""The memory guard: a run that will not fit is refused before it starts."""

from __future__ import annotations

from dataclasses import replace
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
    assert "(even in tiles of 512 pixels)" in str(info.value)
    assert (
        memory.least_bytes(preset, int(fits * 0.75), fits, free)
        <= free
        < memory.least_bytes(preset, int((fits + 1) * 0.75), fits + 1, free)
    )
    assert fits > 2048  # tiles: far past the largest size that fits whole
    assert memory.estimate_bytes(preset, 1536, 2048) > free
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


def test_a_run_too_large_to_fit_whole_is_planned_in_tiles() -> None:
    preset = FAST.with_overrides(size=4096)
    shapes = [(384, 512), (768, 1024), (1536, 2048), (3072, 4096)]
    free = 22 * 2**30  # a 24 GiB machine
    assert memory.estimate_bytes(preset, 3072, 4096) > free  # whole: about 30 GiB
    memory.check_memory(preset, 3072, 4096, torch.device("cpu"), available=free)  # no refusal: tiles
    tiles = memory.scale_tiles(preset, shapes, free)
    assert tiles == [None, None, memory.AUTO_TILE_MAX, memory.AUTO_TILE_MAX]  # each scale larger than a tile
    peak = memory.run_bytes(preset, shapes, tiles)
    assert peak == memory.tiled_estimate_bytes(preset, 3072, 4096, memory.AUTO_TILE_MAX) < 8 * 2**30
    assert memory.scale_tiles(preset, shapes, None) == [None] * 4  # unknown memory: nothing planned
    eight_k = [*shapes, (6144, 8192)]
    big = FAST.with_overrides(size=8192)
    tiles = memory.scale_tiles(big, eight_k, free)
    assert tiles[-1] == memory.AUTO_TILE_MAX and memory.run_bytes(big, eight_k, tiles) < 20 * 2**30
    small = memory.scale_tiles(preset, shapes, 6 * 2**30)[-1]  # less memory: smaller tiles
    assert small is not None and memory.AUTO_TILE_MIN <= small < memory.AUTO_TILE_MAX and small % 16 == 0
    assert memory.tiled_estimate_bytes(preset, 3072, 4096, small) <= 6 * 2**30


def test_a_given_tile_size_tiles_each_scale_larger_than_a_tile() -> None:
    preset = FAST.with_overrides(size=2048, tile_size=1024)
    shapes = [(384, 512), (768, 1024), (1536, 2048)]
    assert memory.scale_tiles(preset, shapes, 2**40) == [None, None, 1024]
    assert memory.least_bytes(preset, 1536, 2048, 2**40) == memory.tiled_estimate_bytes(preset, 1536, 2048, 1024)
    assert memory.scale_tiles(replace(preset, optimizer="instant"), shapes, 1) == [None] * 3
