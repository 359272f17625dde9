"""The time budget (``--time``, ``time=``): checked like every option, split over scales, kept by every optimiser."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch

from styletransfer.cli import main
from styletransfer.driver import scale_deadlines
from styletransfer.errors import OptionError
from styletransfer.job import make_job
from styletransfer.optimize import KerasAdam, Reporter, run_adam, run_lbfgs
from styletransfer.pipeline import decode_inputs, objective_at, optimize, plan, resolve_settings
from styletransfer.runner import run_job


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, "ten"])
def test_bad_budgets_are_refused_naming_the_option(bad: object) -> None:
    with pytest.raises(OptionError) as caught:
        resolve_settings("fast", time_budget=bad, device="cpu")  # type: ignore[arg-type]
    assert caught.value.option == "time"


@pytest.mark.parametrize("bad", ["0", "-5", "nan", "inf", "ten"])
def test_the_cli_names_time_for_a_bad_budget(
    bad: str, tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c, s = tiny_pair
    with pytest.raises(SystemExit) as exited:
        main([str(c), str(s), "-o", str(tmp_path / "out.png"), "--time", bad])
    assert exited.value.code == 2
    assert "--time" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_deadlines_split_the_budget_by_cost_and_are_cumulative() -> None:
    ends = scale_deadlines(10.0, 100.0, [300, 50], [1.0, 4.0])
    first = 300 * 1.0 / (300 * 1.0 + 50 * 4.0)
    assert ends[0] == pytest.approx(10.0 + 100.0 * first)
    assert ends[1] == pytest.approx(110.0)
    assert scale_deadlines(0.0, None, [300, 50], [1.0, 4.0]) == [None, None]


def test_the_cost_model_makes_large_and_tiled_scales_dearer_than_their_pixels() -> None:
    from styletransfer.pipeline import LARGE_PIXELS, PIXEL_EXPONENT, evaluation_costs
    from styletransfer.pipeline.cost import LARGE_PIXEL_EXPONENT, TILED_PASSES
    from styletransfer.presets import FAST

    cpu = torch.device("cpu")
    layers = [*FAST.style_layers, *FAST.content_layers]
    shapes = [(192, 256), (384, 512), (768, 1024), (1536, 2048)]
    small, base, double, tiled = evaluation_costs(shapes, [None, None, None, 1024], layers, "fp32", cpu)
    assert base == pytest.approx(evaluation_costs([(384, 512)], [None], layers, "fp32", torch.device("cuda"))[0])
    assert small / base == pytest.approx((LARGE_PIXELS // 4 / LARGE_PIXELS) ** PIXEL_EXPONENT)
    assert double / base == pytest.approx(4 ** LARGE_PIXEL_EXPONENT["fp32"])  # 4.92x for 4x the pixels
    # 2048x1536 in tiles of 1024 (halos included): more than 16x the 512 px evaluation, its pixels' ratio
    assert tiled / base > TILED_PASSES * 16 ** LARGE_PIXEL_EXPONENT["fp32"]
    # a budget over 569 evaluations at 512 px and 40 at each of 1024 and 2048 px: the finest scale's share
    # is its time at its cap, about 70% (by pixels alone it would be 47%)
    ends = scale_deadlines(0.0, 1.0, [569, 40, 40], [base, double, tiled])
    assert 1.0 - ends[1] > 0.6  # type: ignore[operator]


def _objective(tiny_pair: tuple[Path, Path], optimizer: str = "lbfgs"):  # type: ignore[no-untyped-def]
    settings = resolve_settings("fast" if optimizer == "lbfgs" else "tutorial", size=64, device="cpu")
    inputs = decode_inputs(str(tiny_pair[0]), str(tiny_pair[1]))
    objective, content, _ = objective_at(inputs, settings, 64)
    return objective, content


def test_a_passed_deadline_ends_lbfgs_after_its_first_evaluation(tiny_pair: tuple[Path, Path]) -> None:
    objective, content = _objective(tiny_pair)
    report = Reporter(50, None)
    report.new_scale(time.perf_counter() - 1.0)
    x = run_lbfgs(objective, content, 50, report)
    assert report.step == 1  # one evaluation to have a best image, none after the deadline
    assert torch.equal(x, content)
    far = Reporter(20, None)
    far.new_scale(time.perf_counter() + 3600.0)
    run_lbfgs(objective, content, 20, far)
    assert far.step == 20  # a deadline far away changes nothing


def test_a_passed_deadline_ends_adam_too(tiny_pair: tuple[Path, Path]) -> None:
    objective, content = _objective(tiny_pair, "adam")
    report = Reporter(50, None)
    report.new_scale(time.perf_counter() - 1.0)
    run_adam(objective, content, 50, KerasAdam(0.02, 0.99, 0.999, 0.1), report)
    assert report.step == 1


def test_a_budgeted_run_ends_in_time_with_the_best_image(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    job = make_job(str(tiny_pair[0]), [str(tiny_pair[1])], str(tmp_path / "out.png"), size=64, steps=100000, time=2.0)
    start = time.perf_counter()
    result = run_job(job, started=start)
    took = time.perf_counter() - start
    assert result.status == "complete" and result.output is not None and result.output.exists()
    assert 1 < result.steps < 100000
    assert took < 2.0 + 1.5  # the budget, plus the last evaluation's overrun and the save on a loaded machine


def test_a_coarse_to_fine_run_keeps_time_for_its_last_scale(tiny_pair: tuple[Path, Path]) -> None:
    settings = resolve_settings(
        "fast", size=96, coarse_size=48, steps=100000, refine_steps=100000, device="cpu", time_budget=5.0
    )
    inputs = decode_inputs(str(tiny_pair[0]), str(tiny_pair[1]))
    sizes: list[int] = []
    steps_at: dict[int, int] = {}

    def on_step(p) -> None:  # type: ignore[no-untyped-def]
        steps_at[p.size] = steps_at.get(p.size, 0) + 1

    result = optimize(inputs, settings, callback=on_step, on_scale=lambda size, _: sizes.append(size))
    assert sizes == [48, 96]
    assert steps_at[96] > 1  # the first scale did not spend it all
    assert result.image.shape[-1] == 96


def test_the_dry_run_says_what_the_budget_buys(
    tiny_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    c, s = tiny_pair
    assert main([str(c), str(s), "--size", "64", "--time", "30", "--dry-run", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["budget"]["seconds"] == 30
    (bought,) = found["budget"]["evaluations"]
    assert 1 <= bought <= found["evaluations"][0]
    assert found["seconds"] <= 30
    settings = resolve_settings("fast", size=64, device="cpu")
    assert plan(decode_inputs(str(c), str(s)), settings)["budget"] is None


def test_the_budget_left_after_loading_the_network_is_split_over_the_scales(tiny_pair: tuple[Path, Path]) -> None:
    import time

    from styletransfer.pipeline import PIXEL_EXPONENT, budget_deadlines

    inputs = decode_inputs(str(tiny_pair[0]), str(tiny_pair[1]))  # 64x48: scales 48x36 and 96x72
    settings = resolve_settings("fast", size=96, coarse_size=48, refine_steps=100, steps=100, time_budget=10.0)
    begin = time.perf_counter() - 4.0  # four seconds already spent (start-up, decoding)
    before = time.perf_counter()
    first, last = budget_deadlines(settings, begin, inputs)
    after = time.perf_counter()
    assert first is not None and last is not None
    assert last == pytest.approx(begin + 10.0)  # the whole run still ends with the budget
    # the 6 s left are split by cost (evaluations x an evaluation's time, which grows as pixels ** 0.85),
    # from when the network is ready
    share = 0.25**PIXEL_EXPONENT / (0.25**PIXEL_EXPONENT + 1.0)  # 0.24
    assert before + share * (begin + 10.0 - after) - 1e-6 <= first <= after + share * (begin + 10.0 - before) + 1e-6
    assert budget_deadlines(resolve_settings("fast", size=96), begin, inputs) == [None]


def test_a_budgeted_scale_keeps_time_for_the_final_scoring() -> None:
    import time

    from styletransfer.optimize import SCORING_RESERVE

    report = Reporter(10, None)
    report.new_scale(None)
    assert not report.out_of_time()  # no budget: never out of time
    now = time.perf_counter()
    report.new_scale(now + 10.0)
    assert not report.out_of_time()  # nothing timed yet at this scale: the first evaluation always runs
    report._last, report.evaluation_seconds = now, 4.0
    assert not report.out_of_time()  # 4 s + the reserve fit in the 10 s left
    report.evaluation_seconds = 10.0 / (1 + SCORING_RESERVE) + 0.5
    assert report.out_of_time()  # the evaluation alone would fit, not with the scoring after it
