"""The plan before work (--dry-run): what it prints, what it bounds, what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from styletransfer import api
from styletransfer.cli import main
from styletransfer.presets import PRESETS

TINY = {"preset": "fast", "size": 32, "device": "cpu"}


def test_dry_run_json_prints_the_plan_and_writes_nothing(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    out = tmp_path / "never.png"
    assert (
        main([str(content), str(style), "-o", str(out), "--size", "1200", "--dry-run", "--json", "--device", "cpu"])
        == 0
    )
    plan = json.loads(capsys.readouterr().out)
    assert {"scales", "evaluations", "seconds", "peak_bytes"} <= set(plan)
    assert plan["scales"] == [[384, 512], [768, 1024], [900, 1200]]
    fast = PRESETS["fast"]  # its budget per pixel at the 512 px scale, then refine_steps at each finer one
    assert plan["evaluations"] == [fast.with_overrides(size=512).sized().steps, fast.refine_steps, fast.refine_steps]
    assert plan["seconds"] > 0 and plan["peak_bytes"] > 2**30 and not out.exists()
    same = api.plan(content, style, size=1200, device="cpu")
    assert same["scales"] == plan["scales"] and same["peak_bytes"] == plan["peak_bytes"]
    assert main([str(content), str(style), "--dry-run", "--size", "64", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "estimated time: at most" in text and "less than 0.3% over 50 evaluations" in text
    assert plan["stop_rule"] == {"rtol": 0.003, "window": 50}
    tutorial = api.plan(content, style, preset="tutorial", size=64, device="cpu")
    assert tutorial["stop_rule"] is None  # Adam: exactly its steps
    assert tutorial["fp32_finish_seconds_per_evaluation"] == [None]


def test_the_plan_bounds_a_bf16_run_by_its_fp32_finish(tiny_pair: tuple[Path, Path]) -> None:
    content, style = tiny_pair
    found = api.plan(content, style, size=64, steps=200, device="cpu", precision="bf16")
    (t,), (t32,) = found["seconds_per_evaluation"], found["fp32_finish_seconds_per_evaluation"]
    w = found["stop_rule"]["window"]
    # the bf16 run may switch after w + 1 evaluations; each part computes its targets once
    assert found["seconds"] == pytest.approx((w + 2) * t + (200 - w) * t32, rel=1e-3, abs=0.1)
    short = api.plan(content, style, size=64, steps=w, device="cpu", precision="bf16")
    assert short["fp32_finish_seconds_per_evaluation"] == [None]  # too short for the rule to fire
    assert short["seconds"] == pytest.approx((w + 1) * short["seconds_per_evaluation"][0], rel=1e-3, abs=0.1)


def test_json_without_dry_run_and_a_missing_output_are_usage_errors(
    tiny_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    assert main([str(content), str(style), "-o", "x.png", "--json"]) == 2
    assert main([str(content), str(style)]) == 2
    assert "-o/--output" in capsys.readouterr().err


def test_a_print_size_is_planned_in_tiles_not_refused(
    tiny_pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from styletransfer import make_job, memory
    from styletransfer.runner import prepare

    monkeypatch.setattr(memory, "available_bytes", lambda device: 22 * 2**30)  # a 24 GiB machine
    content, style = tiny_pair
    argv = [str(content), str(style), "-o", "big.png", "--size", "4096", "--dry-run", "--device", "cpu"]
    assert main([*argv, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["scales"][-1] == [3072, 4096]
    assert plan["tiles"] == [None, None, {"side": 1024, "count": 6}, {"side": 1024, "count": 20}]
    assert plan["peak_bytes"] == memory.tiled_estimate_bytes(PRESETS["fast"], 3072, 4096, 1024) < 8 * 2**30
    assert plan["seconds_per_evaluation"][-1] > 4 * plan["seconds_per_evaluation"][-2] > 0
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "  4096x3072: at most 40 evaluations" in text and "in 20 tiles of at most 1024 px\n" in text
    settings, _ = prepare(make_job(content, style, "big.png", size=4096, device="cpu"))
    assert settings.preset.tile_size == 1024  # the plan is the job's: its manifest records it, rerun repeats it
    settings, _ = prepare(make_job(content, style, "small.png", size=64, device="cpu"))
    assert settings.preset.tile_size is None


def test_a_given_tile_size_is_rounded_with_a_note_and_a_small_one_refused(
    tiny_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    argv = [str(content), str(style), "-o", "o.png", "--size", "600", "--dry-run", "--device", "cpu"]
    assert main([*argv, "--tile-size", "500"]) == 0
    captured = capsys.readouterr()
    assert "the tile size 500 is not a multiple of the pooling grid (16 pixels): using 496" in captured.err
    assert "  512x384: at most" in captured.out and "600x450: at most" in captured.out
    assert captured.out.count("in 2 tiles of at most 496 px") == 2
    assert main([*argv, "--tile-size", "150"]) == 2
    err = capsys.readouterr().err
    assert "--tile-size 150 is too small" in err and "use --tile-size 208 or more" in err
    assert len(err.strip().splitlines()) == 1
    assert main([*argv, "--preset", "instant", "--tile-size", "512"]) == 2
    assert "--tile-size does not apply to the instant preset" in capsys.readouterr().err
    plan = api.plan(content, style, size=600, tile_size=496, device="cpu")
    assert plan["tiles"] == [{"side": 496, "count": 2}] * 2
