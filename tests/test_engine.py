"""The job engine: jobs as data, stopping from outside, one option table, the plan before work."""

from __future__ import annotations

import argparse
import inspect
import json
import re
import shutil
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from PIL import Image

from styletransfer import api, pipeline
from styletransfer.cli import main, main_parser
from styletransfer.errors import OptionError
from styletransfer.events import JobResult, JobStart, Observer
from styletransfer.job import Job, make_job
from styletransfer.manifest import manifest_path
from styletransfer.options import OPTIONS, check_options, json_schema
from styletransfer.presets import PRESETS, markdown_table
from styletransfer.runner import run_job

ROOT = Path(__file__).resolve().parents[1]
TINY = {"preset": "fast", "size": 32, "device": "cpu"}


class Recorder(Observer):
    """Remembers every event, and sets ``first`` once the first evaluation is reported."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.steps: list[int] = []
        self.first = threading.Event()
        self.result: JobResult | None = None

    def start(self, run: JobStart) -> None:
        self.events.append("start")

    def progress(self, p: object) -> None:
        self.steps.append(p.step)  # type: ignore[attr-defined]
        self.first.set()

    def end(self, result: JobResult) -> None:
        self.events.append("end")
        self.result = result

    def close(self) -> None:
        self.events.append("close")


def _stopper(first: threading.Event, stop: threading.Event, seen: list[int], steps: list[int]) -> threading.Thread:
    """A thread that waits for the first evaluation, notes the step, then asks the run to stop."""

    def work() -> None:
        first.wait(60)
        seen.append(steps[-1])
        stop.set()

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_should_stop_from_another_thread_ends_the_run_within_one_evaluation(tiny_pair: tuple[Path, Path]) -> None:
    content, style = tiny_pair
    stop, first = threading.Event(), threading.Event()
    steps: list[int] = []
    seen: list[int] = []

    def callback(p: object) -> None:
        steps.append(p.step)  # type: ignore[attr-defined]
        first.set()
        time.sleep(0.05)  # give the other thread time to ask, as a slower evaluation would

    thread = _stopper(first, stop, seen, steps)
    image = api.stylize(
        content, style, preset="fast", size=32, steps=200, device="cpu", callback=callback, should_stop=stop.is_set
    )
    thread.join()
    assert image.size == (32, 24)
    assert len(steps) < 200 and steps[-1] <= seen[0] + 1  # the evaluation under way, then no more


def test_run_job_stopped_from_another_thread_saves_the_image_so_far(
    tiny_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    content, style = tiny_pair
    out = tmp_path / "out.png"
    job = make_job(content, style, out, **TINY, steps=200, manifest=True, log=str(tmp_path / "log.csv"))
    recorder, stop = Recorder(), threading.Event()
    seen: list[int] = []
    thread = _stopper(recorder.first, stop, seen, recorder.steps)
    result = run_job(job, [recorder], should_stop=stop.is_set)
    thread.join()
    assert result.status == "interrupted" and result.output == out and Image.open(out).size == (32, 24)
    assert result.steps == recorder.steps[-1] <= seen[0] + 1 < 200
    assert recorder.events == ["start", "end", "close"] and recorder.result is result
    assert json.loads(manifest_path(out).read_text())["status"] == "interrupted"
    assert len((tmp_path / "log.csv").read_text().splitlines()) == result.steps + 1


def test_a_stop_before_the_first_evaluation_writes_nothing(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = tiny_pair
    out = tmp_path / "out.png"
    result = run_job(make_job(content, style, out, **TINY, steps=5), should_stop=lambda: True)
    assert result.status == "cancelled" and result.image is None and not out.exists()


def test_a_complete_job(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = tiny_pair
    out = tmp_path / "out.png"
    recorder = Recorder()
    result = run_job(make_job(content, style, out, **TINY, steps=4), [recorder])
    assert result.status == "complete" and result.steps == 4 and recorder.steps == [1, 2, 3, 4]
    assert result.terms is not None and result.terms["total"] == pytest.approx(
        result.terms["style"] + result.terms["content"] + result.terms["tv"]
    )
    assert Image.open(out).size == (32, 24)


def test_jobs_round_trip_through_json_with_every_option(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = tiny_pair
    job = make_job(content, [style, style], tmp_path / "o.png", size=48, style_blend=[2, 1], init="noise", seed=7)
    assert set(job.options) == {o.name for o in OPTIONS}
    # the default's budget per pixel at 48 px: its least
    assert job.options["steps"] == PRESETS["fast"].min_steps and job.options["style_blend"] == (2.0, 1.0)
    assert make_job(content, style, size=512).options["steps"] == 569
    again = Job.from_json(job.to_json())
    assert again == job
    with pytest.raises(OptionError) as info:
        make_job(content, style, None, sizes=3)
    assert info.value.option == "sizes"


def test_the_api_and_the_cli_make_the_same_job(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    # Options given to the API and to the CLI end up in the same job, so their manifests agree.
    content, style = tiny_pair
    out = tmp_path / "cli.png"
    argv = [
        str(content),
        str(style),
        "-o",
        str(out),
        "--size",
        "32",
        "--steps",
        "2",
        "--init",
        "noise",
        "--style-blend",
        "1",
        "--pooling",
        "avg",
        "--manifest",
        "-q",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    recorded = json.loads(manifest_path(out).read_text())["job"]
    job = make_job(
        content, style, out, size=32, steps=2, init="noise", style_blend=[1], pooling="avg", manifest=True, device="cpu"
    )
    assert recorded == job.to_dict()


def test_every_run_option_is_an_api_keyword_and_a_cli_flag() -> None:
    keywords = set(inspect.signature(api.stylize).parameters) - {"content", "style", "callback", "should_stop"}
    run_options = {o.name for o in OPTIONS if o.group != "output"}
    assert keywords == run_options
    flags = {a.dest for a in main_parser()._actions if isinstance(a, argparse.Action)}
    assert {o.name for o in OPTIONS} <= flags
    for o in OPTIONS:  # the CLI's help is the table's
        action = next(a for a in main_parser()._actions if a.dest == o.name)
        assert action.help is not None and action.help.startswith(o.help[:40])


def test_the_readme_lists_every_flag_and_the_presets_table_is_generated() -> None:
    readme = (ROOT / "README.md").read_text()
    summary = readme[readme.index("```bash\nstyletransfer CONTENT STYLE") :]
    summary = summary[: summary.index("```", 8)]
    for o in OPTIONS:
        assert o.flag in summary, o.flag
    assert markdown_table() in readme  # the presets table is the presets' own, field by field


def test_option_checks_name_the_option() -> None:
    for values, name, words in [
        ({"size": 0}, "size", "must be at least 1, not 0"),
        ({"size": 2.5}, "size", "must be a whole number"),
        ({"style_blend": [1, -1]}, "style_blend", "must be >= 0"),
        ({"pooling": "min"}, "pooling", "unknown pooling 'min'"),
        ({"manifest": "yes"}, "manifest", "must be true or false"),
        ({"style_scale": 0}, "style_scale", "must be > 0"),
    ]:
        with pytest.raises(OptionError, match=re.escape(words)) as info:
            check_options(values)
        assert info.value.option == name and "--" not in str(info.value)
    schema = json_schema()
    assert set(schema["properties"]) == {o.name for o in OPTIONS}
    assert schema["properties"]["size"]["maximum"] == 16383 and schema["properties"]["seed"]["default"] == 0


def test_the_options_module_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, styletransfer.options, styletransfer.errors, styletransfer.presets; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


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


def test_each_input_is_decoded_once_and_targets_once_per_scale(
    tiny_pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import styletransfer.images as images

    content, style = tiny_pair
    decoded: list[str] = []
    built: list[tuple[int, ...]] = []
    real_read, real_build = images.read_image, pipeline.build_objective

    def counting_read(path: object, needed: int | None = None) -> object:
        decoded.append(str(path))
        return real_read(path, needed)  # type: ignore[arg-type]

    def counting_build(settings: object, c: object, s: object) -> object:
        built.append(tuple(c.shape))  # type: ignore[attr-defined]
        return real_build(settings, c, s)  # type: ignore[arg-type]

    monkeypatch.setattr(images, "read_image", counting_read)
    monkeypatch.setattr(pipeline.objective, "build_objective", counting_build)
    job = make_job(
        content,
        style,
        tmp_path / "o.png",
        preset="fast",
        size=48,
        steps=2,
        device="cpu",
        preserve_colors="luminance",
        manifest=True,
        figures=str(tmp_path / "figs"),
    )
    job.preset_fields = {**asdict(PRESETS["fast"]), "coarse_size": 32, "refine_steps": 2, "size": 48}
    result = run_job(job)
    assert result.status == "complete" and result.steps == 4
    assert sorted(decoded) == sorted([str(content), str(style)])  # once each, whatever the scales and outputs ask
    assert [shape[-1] for shape in built] == [32, 48]  # one objective (targets) per scale, none for the manifest


def test_an_output_that_becomes_unwritable_at_the_end_exits_1(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    folder = tmp_path / "gone"
    folder.mkdir()
    out = folder / "out.png"
    gone = threading.Event()

    def remove_once_running() -> None:
        deadline = time.monotonic() + 60
        while not list(folder.glob("out.step*.png")) and time.monotonic() < deadline:
            time.sleep(0.01)
        shutil.rmtree(folder)
        gone.set()

    thread = threading.Thread(target=remove_once_running)
    thread.start()
    code = main(
        [
            str(content),
            str(style),
            "-o",
            str(out),
            "--size",
            "32",
            "--steps",
            "40",
            "--save-every",
            "1",
            "--device",
            "cpu",
            "--preset",
            "tutorial",
            "-q",
        ]
    )
    thread.join()
    err = capsys.readouterr().err
    assert gone.is_set() and code == 1, err
    assert "does not exist" in err.strip().splitlines()[-1]


def test_each_precision_runs_or_says_why_not_on_this_device(tiny_pair: tuple[Path, Path]) -> None:
    content, style = tiny_pair
    exact = api.stylize(content, style, preset="tutorial", size=32, steps=3, device="cpu", precision="fp32")
    bf16 = api.stylize(content, style, preset="tutorial", size=32, steps=3, device="cpu", precision="bf16")
    assert bf16.size == exact.size
    a, b = (api.loss_terms(im, content, style, size=32)["total"] for im in (exact, bf16))
    assert b == pytest.approx(a, rel=0.05)  # bf16 convolutions, fp32 Gram and losses: close, not equal
    with pytest.raises(OptionError, match="tf32 is a CUDA GPU mode") as info:
        api.stylize(content, style, size=32, steps=1, device="cpu", precision="tf32")
    assert info.value.option == "precision"


def test_auto_precision_is_bf16_only_for_lbfgs_on_a_cpu_with_bf16_units() -> None:
    import torch

    from styletransfer.pipeline import check_precision, native_bf16, resolve_settings

    cpu = torch.device("cpu")
    units = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert native_bf16(cpu) == units  # AVX-512-BF16 (AMD Zen 4, Intel Cooper Lake) counts, not only AMX
    assert not native_bf16(torch.device("meta"))
    expected = "bf16" if units else "fp32"
    assert check_precision("auto", cpu, "lbfgs") == expected
    assert check_precision("auto", cpu, "lbfgs", size=383) == "fp32"  # small images stay exact
    assert check_precision("auto", cpu, "adam") == "fp32"  # the tutorial stays the seed's arithmetic
    assert resolve_settings("fast", device="cpu").precision == expected
    assert resolve_settings("fast", size=256, device="cpu").precision == "fp32"
    assert resolve_settings("tutorial", device="cpu").precision == "fp32"
    assert resolve_settings("fast", device="cpu", precision="fp32").precision == "fp32"


def test_an_evaluation_grows_faster_than_its_pixels_above_512_px_on_a_cpu() -> None:
    import torch

    from styletransfer.pipeline import LARGE_PIXELS, PIXEL_EXPONENT, RUN_OVERHEAD, scaled_seconds

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    n = LARGE_PIXELS // 4
    assert scaled_seconds(1.0, n, n, "bf16", cpu) == pytest.approx(RUN_OVERHEAD)
    assert scaled_seconds(1.0, n, LARGE_PIXELS, "bf16", cpu) == pytest.approx(RUN_OVERHEAD * 4**PIXEL_EXPONENT)
    big = scaled_seconds(1.0, n, 16 * LARGE_PIXELS, "bf16", cpu) / scaled_seconds(1.0, n, LARGE_PIXELS, "bf16", cpu)
    assert big == pytest.approx(16**1.1)
    assert scaled_seconds(1.0, n, 16 * LARGE_PIXELS, "fp32", cuda) == pytest.approx(RUN_OVERHEAD * 64**PIXEL_EXPONENT)


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "expected"), [(True, False, True), (False, True, True), (False, False, False)]
)
def test_bf16_units_are_amx_or_avx512_bf16(
    monkeypatch: pytest.MonkeyPatch, amx: bool, avx512_bf16: bool, expected: bool
) -> None:
    import torch

    from styletransfer.pipeline import check_precision, native_bf16

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    cpu = torch.device("cpu")
    assert native_bf16(cpu) is expected
    assert check_precision("auto", cpu, "lbfgs", size=512) == ("bf16" if expected else "fp32")
