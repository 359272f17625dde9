"""``styletransfer batch``: items, the resumable ledger, failures as items, worker processes, reused style targets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styletransfer.batch import LEDGER, make_items, read_ledger, run_batch
from styletransfer.batch.local import LocalExecutor
from styletransfer.cli import main

TINY = ["--size", "32", "--steps", "3", "--device", "cpu", "-q"]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """One torch thread for the batches run in this process (the machine is shared)."""
    monkeypatch.setattr("styletransfer.batch.local.cpu_count", lambda: 1)


@pytest.fixture
def folder(tmp_path: Path, tubingen: Path, starry: Path) -> tuple[Path, Path]:
    """Three 32x24 photos and a broken file in a directory, and a 32x26 style."""
    photos = tmp_path / "photos"
    photos.mkdir()
    with Image.open(tubingen) as im:
        for i, box in enumerate([(0, 0, 512, 384), (100, 50, 500, 350), (0, 100, 300, 325)]):
            im.crop(box).resize((32, 24), Image.BILINEAR).save(photos / f"p{i}.png")
    (photos / "broken.png").write_bytes(b"not an image at all")
    style = tmp_path / "style.png"
    with Image.open(starry) as im:
        im.resize((32, 26), Image.BILINEAR).save(style)
    return photos, style


def _lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / LEDGER).read_text().splitlines()]


def test_batch_resumes_skips_redoes_and_reports_failures(folder, tmp_path, capsys):
    photos, style = folder
    out = tmp_path / "out"
    assert main(["batch", str(photos), "-o", str(out), "--style", str(style), *TINY]) == 1
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines()[-1] == "3 done, 0 skipped, 1 failed"
    assert "broken_style.png: " in captured.err and captured.err.count("\n") == 1  # one line for the failure
    assert sorted(p.name for p in out.glob("*.png")) == ["p0_style.png", "p1_style.png", "p2_style.png"]
    records = _lines(out)
    assert [r["status"] for r in records].count("complete") == 3
    failed = next(r for r in records if r["status"] == "failed")
    assert "broken.png" in failed["error"] and "\n" not in failed["error"]
    first = {r["item"]: r for r in records}

    # The same command again: nothing redone (the failed item is tried again and fails again).
    assert main(["batch", str(photos), "-o", str(out), "--style", str(style), *TINY]) == 1
    assert capsys.readouterr().out.strip().splitlines()[-1] == "0 done, 3 skipped, 1 failed"

    # A lost output is made again; the others stay skipped.
    (out / "p1_style.png").unlink()
    (photos / "broken.png").unlink()
    assert main(["batch", str(photos), "-o", str(out), "--style", str(style), *TINY]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "1 done, 2 skipped, 0 failed"
    assert read_ledger(out)["p1_style.png"]["output_sha256"] == first["p1_style.png"]["output_sha256"]

    # Other settings: every item is redone; --overwrite redoes all too.
    args = ["batch", str(photos), "-o", str(out), "--style", str(style), "--size", "32", "--steps", "4", "-q"]
    assert main([*args, "--device", "cpu"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "3 done, 0 skipped, 0 failed"
    assert main([*args, "--device", "cpu", "--overwrite"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "3 done, 0 skipped, 0 failed"


def test_blend_makes_one_item_per_content(folder, tmp_path, starry):
    photos, style = folder
    items = make_items([photos / "p0.png", photos / "p1.png"], [style, starry], tmp_path / "o", style_blend=[1.0, 1.0])
    assert [i.key for i in items] == ["p0_style+starry_night.png", "p1_style+starry_night.png"]
    assert len(make_items([photos / "p0.png"], [style, starry], tmp_path / "o")) == 2


def test_two_worker_processes(folder, tmp_path):
    photos, style = folder
    (photos / "broken.png").unlink()
    items = make_items([photos], [style], tmp_path / "out", size=32, steps=3, device="cpu")
    summary = run_batch(items, tmp_path / "out", LocalExecutor(2))
    assert summary.line() == "3 done, 0 skipped, 0 failed"
    assert {r["status"] for r in read_ledger(tmp_path / "out").values()} == {"complete"}


def test_a_killed_batch_finishes_the_rest_and_loses_nothing(folder, tmp_path):
    photos, style = folder
    (photos / "broken.png").unlink()
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "styletransfer", "batch", str(photos), "-o", str(out), "--style", str(style)]
    cmd += ["--size", "40", "--steps", "25", "--device", "cpu", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (out / LEDGER).exists() and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_ledger(out)
    done_before = [k for k, r in before.items() if r["status"] == "complete"]
    assert 1 <= len(done_before) < 3, before
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last == f"{3 - len(done_before)} done, {len(done_before)} skipped, 0 failed"
    for record in read_ledger(out).values():
        with Image.open(record["output"]) as im:
            assert im.size == (40, 30)


def test_style_targets_are_computed_once_per_style_and_size(tiny_pair):
    from styletransfer.images import load_img
    from styletransfer.pipeline import build_objective, resolve_settings

    content, style = tiny_pair
    settings = resolve_settings("fast", size=32, device="cpu")
    c, s = load_img(content, 32), load_img(style, 32)
    a = build_objective(settings, c, [s])
    b = build_objective(settings, c.flip(-1), [s])
    assert all(a.style_targets[n] is b.style_targets[n] for n in a.style_layers)
    other = build_objective(settings, c, [load_img(style, 40)])
    assert not np.allclose(other.style_targets["block1_conv1"].numpy(), 0) and all(
        other.style_targets[n] is not a.style_targets[n] for n in a.style_layers
    )


def test_grouped_batch_gives_the_same_pixels_and_a_broken_item_fails_alone(folder, tmp_path, capsys, monkeypatch):
    """``--group 4``: the three photos (one shape) run as one batch, the broken file fails alone, resumable.

    With PyTorch's native convolutions (``mkldnn`` off) an image's arithmetic does not depend on the batch,
    so the grouped batch writes the bytes the ungrouped one writes.
    """
    import torch

    import styletransfer.runner

    photos, style = folder
    sizes: list[int] = []
    real = styletransfer.runner.optimize_batch

    def counting(inputs, *args, **kwargs):  # the real batched run, counted
        sizes.append(len(inputs))
        return real(inputs, *args, **kwargs)

    monkeypatch.setattr(styletransfer.runner, "optimize_batch", counting)
    args = ["--style", str(style), *TINY, "--manifest"]
    with torch.backends.mkldnn.flags(enabled=False):
        assert main(["batch", str(photos), "-o", str(tmp_path / "one"), *args]) == 1
        assert main(["batch", str(photos), "-o", str(tmp_path / "grouped"), *args, "--group", "4"]) == 1
    assert sizes == [3]
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == lines[-2] == "3 done, 0 skipped, 1 failed"
    one, grouped = read_ledger(tmp_path / "one"), read_ledger(tmp_path / "grouped")
    assert grouped["broken_style.png"]["status"] == "failed" and "broken.png" in grouped["broken_style.png"]["error"]
    for key in ("p0_style.png", "p1_style.png", "p2_style.png"):
        assert grouped[key]["status"] == "complete" and grouped[key]["steps"] == 3
        assert grouped[key]["output_sha256"] == one[key]["output_sha256"]
        assert (tmp_path / "grouped" / f"{key}.json").is_file()  # each item's own manifest
    assert main(["batch", str(photos), "-o", str(tmp_path / "grouped"), *args, "--group", "4"]) == 1
    assert capsys.readouterr().out.strip().splitlines()[-1] == "0 done, 3 skipped, 1 failed"


def test_grouped_batch_under_onednn_is_within_one_level(folder, tmp_path):
    """With oneDNN's batch-dependent kernels the pixels agree to rounding: at most one 8-bit level."""
    photos, style = folder
    (photos / "broken.png").unlink()
    options = {"size": 32, "steps": 3, "device": "cpu"}
    for name, group in (("one", 1), ("grouped", 3)):
        items = make_items([photos], [style], tmp_path / name, **options)
        assert run_batch(items, tmp_path / name, LocalExecutor(1, group=group)).line() == "3 done, 0 skipped, 0 failed"
    for p in sorted((tmp_path / "one").glob("*.png")):
        a = np.asarray(Image.open(p), dtype=int)
        b = np.asarray(Image.open(tmp_path / "grouped" / p.name), dtype=int)
        assert np.abs(a - b).max() <= 1


def test_chunks_group_items_by_options_and_styles():
    from styletransfer.batch.worker import chunks

    def payload(style: str, size: int = 32, error: str | None = None) -> dict:
        return {"job": {"styles": [style], "options": {"size": size}}, **({"error": error} if error else {})}

    payloads = [
        payload("a"),
        payload("b"),
        payload("a"),
        payload("a", error="unreadable"),
        payload("a"),
        payload("a", 40),
    ]
    assert chunks(payloads, 1) == [[0], [1], [2], [3], [4], [5]]
    assert chunks(payloads, 2) == [[0, 2], [1], [3], [4], [5]]
    assert chunks(payloads, 8) == [[0, 2, 4], [1], [3], [5]]


@pytest.mark.parametrize(
    "name", ["../{stem}.png", "sub/../../{stem}.png", "ABSOLUTE/{stem}.png", "batch.jsonl", "link/{stem}.png"]
)
def test_a_name_that_leaves_the_output_directory_is_refused(folder, tmp_path, capsys, name):
    photos, style = folder
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(tmp_path)  # a link inside OUT_DIR that points out of it
    before = sorted(p.name for p in tmp_path.iterdir())
    name = name.replace("ABSOLUTE", str(tmp_path))
    assert main(["batch", str(photos), "-o", str(out), "--style", str(style), "--name", name, *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--name" in err and ("outside the output directory" in err or "own file" in err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (out / LEDGER).exists()


def test_a_torn_last_line_does_not_swallow_the_next_record(folder, tmp_path, capsys):
    """A batch killed mid-write leaves half a line; the next record starts on its own line and is read."""
    photos, style = folder
    (photos / "broken.png").unlink()
    out = tmp_path / "out"
    args = ["batch", str(photos), "-o", str(out), "--style", str(style), *TINY]
    assert main(args) == 0
    (out / "p1_style.png").unlink()
    with open(out / LEDGER, "a", encoding="utf-8") as f:
        f.write('{"item": "p1_style.png", "status": "compl')  # torn: no end, no newline
    assert main(args) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "1 done, 2 skipped, 0 failed"
    lines = (out / LEDGER).read_text().splitlines()
    assert lines[-2] == '{"item": "p1_style.png", "status": "compl'
    assert json.loads(lines[-1])["item"] == "p1_style.png"
    assert read_ledger(out)["p1_style.png"]["status"] == "complete"
    assert main(args) == 0  # and nothing is done twice
    assert capsys.readouterr().out.strip().splitlines()[-1] == "0 done, 3 skipped, 0 failed"


def test_a_second_batch_on_the_same_folder_exits_2_naming_the_holder(folder, tmp_path, capsys):
    """Another process holds OUT_DIR's lock: the second batch runs nothing and says who holds it."""
    photos, style = folder
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from styletransfer.folder_lock import FolderLock; "
            f"lock = FolderLock({str(out)!r}, 'a batch').acquire(); print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        assert main(["batch", str(photos), "-o", str(out), "--style", str(style), *TINY]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"a batch (pid {holder.pid}" in err and "already in use" in err
        assert not (out / LEDGER).exists() and not list(out.glob("*.png"))
    finally:
        holder.kill()
        holder.wait()
    (photos / "broken.png").unlink()
    assert main(["batch", str(photos), "-o", str(out), "--style", str(style), *TINY]) == 0  # free again


@pytest.mark.parametrize("role", ["input", "style", "in-a-folder"])
def test_a_fifo_in_a_batch_is_refused_or_skipped_without_opening_it(folder, tmp_path, capsys, role):
    """A FIFO named as an input or a style: exit 2, one line; one inside an input folder is not an image file."""
    from tests.fifos import WatchedFifo

    photos, style = folder
    (photos / "broken.png").unlink()
    out = tmp_path / "out"
    place = photos / "fifo.png" if role == "in-a-folder" else tmp_path / "fifo.png"
    with WatchedFifo(place) as fifo:
        inputs = [str(photos)] + ([str(fifo.path)] if role == "input" else [])
        styles = [str(fifo.path)] if role == "style" else [str(style)]
        code = main(["batch", *inputs, "-o", str(out), "--style", *styles, *TINY])
        assert fifo.readers == 0
    captured = capsys.readouterr()
    if role == "in-a-folder":
        assert code == 0 and captured.out.strip().splitlines()[-1] == "3 done, 0 skipped, 0 failed"
    else:
        assert code == 2 and captured.err.count("\n") == 1
        assert f"{fifo.path}: is a FIFO (named pipe), not a regular file" in captured.err
        assert not (out / LEDGER).exists()


class _ShippingExecutor:
    """A remote executor whose worker sends back the item's files and ``extra`` ones (as a compromised node could)."""

    name = "fake-remote"
    ships_files = True

    def __init__(self, extra: dict[str, bytes]) -> None:
        self.extra = extra

    def run(self, payloads):
        for i, payload in enumerate(payloads):
            output = payload["job"]["output"]
            yield i, {"status": "complete", "steps": 1, "seconds": 0.0, "outputs": {output: b"png", **self.extra}}

    def close(self) -> None:
        pass


@pytest.mark.parametrize("where", ["outside", "beside-the-output", "figures-escape"])
def test_the_driver_writes_only_the_files_an_item_writes(folder, tmp_path, where):
    photos, style = folder
    out = tmp_path / "out"
    victim = {
        "outside": tmp_path / "photos" / "p0.png",  # the user's own picture
        "beside-the-output": out / "p1_style.png",
        "figures-escape": out / "figs" / ".." / "batch.jsonl",
    }[where]
    original = victim.read_bytes() if victim.exists() else None
    items = make_items([photos / "p2.png"], [style], out, figures=str(out / "figs"))
    summary = run_batch(items, out, _ShippingExecutor({str(victim): b"overwritten"}))
    assert summary.line() == "0 done, 0 skipped, 1 failed"
    record = read_ledger(out)["p2_style.png"]
    assert record["status"] == "failed" and str(victim) in record["error"]
    assert not (out / "p2_style.png").exists()  # nothing of that item is written
    if original is not None:
        assert victim.read_bytes() == original
    elif where != "figures-escape":
        assert not victim.exists()
    assert b"overwritten" not in (out / LEDGER).read_bytes()
    # An honest worker's files (the output and a figure) are written.
    honest = run_batch(items, out, _ShippingExecutor({str(out / "figs" / "losses.png"): b"fig"}))
    assert honest.line() == "1 done, 0 skipped, 0 failed" and (out / "p2_style.png").read_bytes() == b"png"
