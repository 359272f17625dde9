"""--manifest and rerun: every setting recorded, and the same image again."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer import __version__
from styletransfer.cli import main
from styletransfer.manifest import file_sha256, manifest_path
from styletransfer.presets import PRESETS


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).copy()


@pytest.fixture
def recorded(tiny_pair: tuple[Path, Path], tmp_path: Path) -> tuple[Path, dict]:
    content, style = tiny_pair
    out = tmp_path / "run.png"
    code = main(
        [
            str(content),
            str(style),
            "-o",
            str(out),
            "--preset",
            "fast",
            "--size",
            "32",
            "--steps",
            "6",
            "--init",
            "noise",
            "--seed",
            "5",
            "--style-weight",
            "0.02",
            "--pooling",
            "avg",
            "--manifest",
            "-q",
        ]
    )
    assert code == 0
    return out, json.loads(manifest_path(out).read_text())


def test_manifest_records_everything(recorded: tuple[Path, dict], tiny_pair: tuple[Path, Path]) -> None:
    out, m = recorded
    content, style = tiny_pair
    assert manifest_path(out) == out.with_name("run.png.json")
    assert m["manifest"] == 1 and m["status"] == "complete" and m["seed"] == 5
    expected = replace(
        PRESETS["fast"].with_overrides(size=32, steps=6, init="noise", style_weight=0.02, pooling="avg"),
        steps_size=None,  # an explicit --steps is the cap at every size
    )
    assert m["settings"]["steps"] == 6 and m["settings"]["pooling"] == "avg" and m["settings"]["init"] == "noise"
    assert m["settings"] == json.loads(json.dumps(expected.__dict__))
    assert m["versions"]["styletransfer"] == __version__ and m["versions"]["torch"] == torch.__version__
    assert m["device"]["type"] == "cpu" and m["device"]["threads"] >= 1
    # The default --precision auto is recorded as what ran (fp32 at 32 px), so a rerun repeats it.
    assert m["device"]["precision"] == "fp32"
    assert m["inputs"]["content"]["sha256"] == file_sha256(content)
    assert [s["sha256"] for s in m["inputs"]["styles"]] == [file_sha256(style)]
    assert len(m["weights"]["sha256"]) == 64
    assert m["output"]["sha256"] == file_sha256(out)
    r = m["result"]
    assert r["total"] == pytest.approx(r["style"] + r["content"] + r["tv"]) and r["total"] > 0
    assert m["timings"]["steps"] == 6 and m["timings"]["wall_s"] > 0


def test_rerun_gives_the_same_image(recorded: tuple[Path, dict], tmp_path: Path) -> None:
    out, m = recorded
    again = tmp_path / "again.png"
    assert main(["rerun", str(manifest_path(out)), "-o", str(again), "--manifest", "-q"]) == 0
    assert np.array_equal(_pixels(again), _pixels(out))
    second = json.loads(manifest_path(again).read_text())
    assert second["settings"] == m["settings"] and second["result"] == pytest.approx(m["result"])


def test_rerun_refuses_changed_inputs_and_bad_manifests(
    recorded: tuple[Path, dict], tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = recorded
    content, _ = tiny_pair
    Image.open(content).rotate(180).save(content)
    assert main(["rerun", str(manifest_path(out)), "-o", str(tmp_path / "x.png")]) == 2
    assert "has changed since the run" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["rerun", str(bad), "-o", str(tmp_path / "x.png")]) == 2
    assert "not a readable manifest" in capsys.readouterr().err
    bad.write_text(json.dumps({"manifest": 1}))
    assert main(["rerun", str(bad), "-o", str(tmp_path / "x.png")]) == 2
    assert "incomplete" in capsys.readouterr().err
    assert main(["rerun", str(tmp_path / "none.json"), "-o", str(tmp_path / "x.png")]) == 2
    assert "no such manifest" in capsys.readouterr().err


def test_rerun_reads_only_the_files_it_hashed(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The init image and the masks come from the manifest's hashed ``inputs``, not from ``job`` or ``settings``."""
    content, style = tiny_pair
    init, mask, other_init, other_mask = (tmp_path / n for n in ("init.png", "mask.png", "oi.png", "om.png"))
    Image.open(content).rotate(180).save(init)
    Image.open(content).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(other_init)
    half = np.zeros((48, 64), np.uint8)
    half[:, :32] = 255
    Image.fromarray(half).save(mask)
    Image.fromarray(255 - half).save(other_mask)
    out = tmp_path / "run.png"
    args = [str(content), str(style), "-o", str(out), "--size", "32", "--steps", "4", "--init", str(init)]
    assert main([*args, "--masks", str(mask), "--device", "cpu", "--manifest", "-q"]) == 0
    m = json.loads(manifest_path(out).read_text())
    assert m["inputs"]["init"]["path"] == str(init.resolve()) and "masks" in m["inputs"]["regions"]
    # Someone edits the unhashed entries to point at other files: the rerun must not read them.
    m["settings"]["init"] = m["job"]["options"]["init"] = str(other_init)
    m["job"]["options"]["masks"] = [str(other_mask)]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(m))
    again = tmp_path / "again.png"
    assert main(["rerun", str(edited), "-o", str(again), "-q"]) == 0
    assert np.array_equal(_pixels(again), _pixels(out))
    # A changed hashed file is still refused.
    Image.open(content).save(init)
    assert main(["rerun", str(edited), "-o", str(tmp_path / "x.png"), "-q"]) == 2
    assert "the init image" in capsys.readouterr().err


def test_rerun_clamps_the_recorded_threads_to_the_cores(recorded: tuple[Path, dict], tmp_path: Path) -> None:
    from styletransfer.batch.worker import cpu_count
    from styletransfer.cli import rerun_threads

    _out, m = recorded
    m["device"]["threads"] = cpu_count() + 61
    edited = tmp_path / "threads.json"
    edited.write_text(json.dumps(m))
    before = torch.get_num_threads()
    try:
        assert main(["rerun", str(edited), "-o", str(tmp_path / "again.png"), "-q"]) == 0
        assert torch.get_num_threads() == cpu_count()
    finally:
        torch.set_num_threads(before)
    assert rerun_threads(-3) == 1 and rerun_threads("x") is None and rerun_threads(float("inf")) is None
    assert rerun_threads(None) is None and rerun_threads(1) == 1


def test_rerun_refuses_a_fifo_as_its_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.fifos import WatchedFifo

    with WatchedFifo(tmp_path / "run.png.json") as fifo:
        assert main(["rerun", str(fifo.path), "-o", str(tmp_path / "x.png")]) == 2
        assert fifo.readers == 0  # refused from stat: nothing opened it
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a FIFO (named pipe), not a regular file" in err
