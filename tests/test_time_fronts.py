"""The time budget (``--time``) in the batch and video front ends: per item, per frame, and bad values refused."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from styletransfer.cli import main
from tests.clips import pan_frames, write_frames

#: The budget of these tests, in seconds, and what a run may take beyond it: the last evaluation's
#: overrun, the save and the records on a loaded 2-core machine.
BUDGET, SLACK = 2.0, 2.0

#: A step cap no run reaches within the budget: only the clock ends these runs.
HUGE = "100000"


@pytest.fixture(scope="module", autouse=True)
def one_thread():  # type: ignore[no-untyped-def]
    """One torch thread: the machine is shared, and the budget is what is measured."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Overran(BaseException):
    """A run went on past its bound: the budget was not kept (a BaseException, so the CLI does not catch it)."""


@contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """Fail with :class:`Overran` after ``seconds`` of wall time, so a budget that is not kept fails, not hangs."""

    def overran(signum: int, frame: object) -> None:
        raise Overran(f"still running after {seconds:g} s: the time budget was not kept")

    before = signal.signal(signal.SIGALRM, overran)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


@pytest.fixture
def two_contents(tiny_pair: tuple[Path, Path], tmp_path: Path) -> tuple[list[Path], Path]:
    """Two 64x48 contents (the photo and it upside down) and a style."""
    content, style = tiny_pair
    flipped = tmp_path / "flipped.png"
    Image.open(content).rotate(180).save(flipped)
    return [content, flipped], style


def _batch(contents: list[Path], style: Path, out: Path, *extra: str) -> tuple[int, float, list[dict]]:  # type: ignore[type-arg]
    start = time.perf_counter()
    with bounded(60.0):
        code = main(
            [
                "batch",
                *map(str, contents),
                "-o",
                str(out),
                "--style",
                str(style),
                "--size",
                "64",
                "--steps",
                HUGE,
                "--time",
                str(BUDGET),
                "--device",
                "cpu",
                "-q",
                *extra,
            ]
        )
    took = time.perf_counter() - start
    records = [json.loads(line) for line in (out / "batch.jsonl").read_text().splitlines()]
    return code, took, records


def test_each_batch_item_gets_the_budget_from_its_own_start(
    two_contents: tuple[list[Path], Path], tmp_path: Path
) -> None:
    contents, style = two_contents
    code, took, records = _batch(contents, style, tmp_path / "out")
    assert code == 0
    assert [r["status"] for r in records] == ["complete", "complete"]
    assert all(Path(r["output"]).is_file() for r in records)
    for r in records:
        assert r["seconds"] <= BUDGET + SLACK  # each item ends at its budget...
        assert 1 <= r["steps"] < int(HUGE)
    # ...counted from its own start: with the batch's clock the second item would start out of time (one evaluation)
    assert records[1]["steps"] > 1 and records[1]["seconds"] >= BUDGET / 2
    assert took <= 2 * (BUDGET + SLACK) + 5.0  # the weights' load and the decoding on top


def test_a_group_shares_one_start_and_takes_the_budget_once(
    two_contents: tuple[list[Path], Path], tmp_path: Path
) -> None:
    contents, style = two_contents
    code, took, records = _batch(contents, style, tmp_path / "out", "--group", "2")
    assert code == 0
    assert [r["status"] for r in records] == ["complete", "complete"]
    assert all(Path(r["output"]).is_file() and 1 <= r["steps"] < int(HUGE) for r in records)
    assert max(r["seconds"] for r in records) <= BUDGET + SLACK
    assert took <= BUDGET + SLACK + 5.0  # one budget for the group, not one per item


def test_each_video_frame_ends_at_the_budget(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    source = write_frames(pan_frames(3, 48, 32), tmp_path / "in")
    metrics = tmp_path / "metrics.json"
    start = time.perf_counter()
    with bounded(60.0):
        code = main(
            [
                "video",
                str(source),
                "-o",
                str(tmp_path / "out"),
                "--style",
                str(tiny_pair[1]),
                "--size",
                "48",
                "--steps",
                HUGE,
                "--frame-steps",
                HUGE,
                "--time",
                str(BUDGET),
                "--device",
                "cpu",
                "--metrics",
                str(metrics),
                "-q",
            ]
        )
    took = time.perf_counter() - start
    assert code == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 3
    frames = json.loads(metrics.read_text())["frames"]
    assert [f["frame"] for f in frames] == [1, 2, 3]
    for f in frames:
        assert f["seconds"] <= BUDGET + SLACK  # the frame's own budget, from the frame's start
        assert 1 <= f["evaluations"] < int(HUGE)  # the evaluations it did, not its cap
    assert frames[-1]["evaluations"] > 1  # a later frame is not starved by a clock started at the first
    assert took <= 3 * (BUDGET + SLACK) + 8.0  # the weights, the flows and the video's files on top


@pytest.mark.parametrize("command", ["batch", "video"])
@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "abc"])
def test_a_bad_budget_is_one_line_naming_time(
    command: str, bad: str, tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exited:
        main([command, str(content), "-o", str(out), "--style", str(style), "--time", bad])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--time" in lines[0] and bad in lines[0]
    assert not out.exists()
