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
