"""Jobs: as data (JSON, the API and the CLI make the same one), run by run_job, stopped from outside, decoded once."""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from PIL import Image

from styletransfer import api, pipeline
from styletransfer.cli import main
from styletransfer.errors import OptionError
from styletransfer.events import JobResult, JobStart, Observer
from styletransfer.job import Job, make_job
from styletransfer.manifest import manifest_path
from styletransfer.options import OPTIONS
from styletransfer.presets import PRESETS
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

    def counting_build(settings: object, c: object, s: object, **regions_and_tile: object) -> object:
        built.append(tuple(c.shape))  # type: ignore[attr-defined]
        return real_build(settings, c, s, **regions_and_tile)  # type: ignore[arg-type]

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
