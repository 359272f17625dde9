"""The Ray executor on a real local Ray instance: the same pixels as local workers; a killed actor's item is retried."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styletransfer.batch import make_items, read_ledger, run_batch
from styletransfer.batch.local import LocalExecutor
from styletransfer.batch.ray_executor import local_weights
from styletransfer.batch.worker import ITEM_PREFIX, sweep_items
from styletransfer.vgg import default_weights_path

pytest.importorskip("ray")


def _pixels(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def test_local_and_ray_give_the_same_pixels(ray_cluster, photos, tmp_path):
    from styletransfer.batch.ray_executor import RayExecutor

    contents, style = photos
    options = {"size": 32, "steps": 4, "device": "cpu", "manifest": True}
    local = run_batch(
        make_items(contents[:2], [style], tmp_path / "local", **options),
        tmp_path / "local",
        LocalExecutor(2, threads=1),
    )
    cache = Path(tempfile.gettempdir()) / f"styletransfer-{os.getuid()}"
    before = set(cache.glob("weights-*"))
    executor = RayExecutor(2, threads=1)
    try:
        remote = run_batch(make_items(contents[:2], [style], tmp_path / "ray", **options), tmp_path / "ray", executor)
    finally:
        executor.close()
    assert local.line() == remote.line() == "2 done, 0 skipped, 0 failed"
    shared = local_weights(default_weights_path().read_bytes())  # already there: the actors' one copy
    assert set(cache.glob("weights-*")) - before <= {shared} and shared.parent == cache
    for name in ("p0_style.png", "p1_style.png"):
        assert np.array_equal(_pixels(str(tmp_path / "local" / name)), _pixels(str(tmp_path / "ray" / name)))
        assert (tmp_path / "ray" / f"{name}.json").is_file()  # the manifest came back from the node
    assert {r["executor"] for r in read_ledger(tmp_path / "ray").values()} == {"ray"}


def test_a_killed_actor_s_item_is_retried_on_another(ray_cluster, photos, tmp_path):
    from styletransfer.batch.ray_executor import RayExecutor

    contents, style = photos
    items = make_items(contents, [style], tmp_path / "out", size=32, steps=12, device="cpu")
    executor = RayExecutor(2, threads=1)
    killed = []

    pids = {actor: ray_cluster.get(actor.pid.remote()) for actor in executor.actors}

    def kill_a_busy_actor(record: dict) -> None:
        busy = executor.busy_actors()
        if not killed and busy:
            ray_cluster.kill(busy[0], no_restart=True)
            killed.append(busy[0])

    try:
        summary = run_batch(items, tmp_path / "out", executor, on_record=kill_a_busy_actor)
        ray_cluster.get([actor.pid.remote() for actor in executor.actors])  # the replacement has started
    finally:
        executor.close()
    assert killed, "no actor was busy when the first item finished"
    assert summary.line() == "4 done, 0 skipped, 0 failed"
    assert all(r["status"] == "complete" for r in read_ledger(tmp_path / "out").values())
    # the replacement actor removed the killed one's item folder (with the user's images in it)
    assert not list(Path(tempfile.gettempdir()).glob(f"{ITEM_PREFIX}{pids[killed[0]]}-*"))


def test_two_videos_on_two_actors_give_the_local_pixels(ray_cluster, photos, tmp_path):
    """Each video on its own actor (frames streamed back, the driver writes them): the pixels of a local run."""
    import torch

    from styletransfer.video import prepare_videos, run_here
    from styletransfer.video.ray_videos import RayVideos
    from tests.clips import pan_frames, pan_zoom_clip, write_frames

    pytest.importorskip("cv2")
    _, style = photos
    sources = [
        write_frames(pan_frames(3, 32, 24), tmp_path / "pan"),
        write_frames(pan_zoom_clip(1, 2, 32, 24).frames, tmp_path / "zoom"),
    ]
    options = {"size": 32, "steps": 4, "device": "cpu", "long_term": 2}
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as each actor: the same arithmetic
    try:
        local = [run_here(p) for p in prepare_videos(sources, style, tmp_path / "local", **options)]
    finally:
        torch.set_num_threads(before)
    runner = RayVideos(2, threads=1)
    seen: list[str] = []
    try:
        videos = prepare_videos(sources, style, tmp_path / "ray", **options)
        remote = runner.run(videos, on_frame=lambda video, record, n: seen.append(video.name))
        pids = {ray_cluster.get(a.pid.remote()) for a in runner.actors}
    finally:
        runner.close()
    assert [r.status for r in local + remote] == ["complete"] * 4, [r.error for r in remote]
    assert len(pids) == 2, "the two videos did not run on two actors"
    assert sorted(seen) == ["pan"] * 3 + ["zoom"] * 3
    for name in ("pan", "zoom"):
        here = sorted((tmp_path / "local" / name).glob("*.png"))
        there = sorted((tmp_path / "ray" / name).glob("*.png"))
        assert len(here) == len(there) == 3
        for a, b in zip(here, there):
            assert np.array_equal(_pixels(str(a)), _pixels(str(b)))


def test_a_video_whose_actor_is_killed_goes_on_from_its_last_frame(ray_cluster, photos, tmp_path):
    """The actor dies after the first frame came back: a new actor continues from it, with the local pixels."""
    import torch

    from styletransfer.video import prepare_videos, run_here
    from styletransfer.video.ray_videos import RayVideos
    from tests.clips import pan_frames, write_frames

    pytest.importorskip("cv2")
    _, style = photos
    source = write_frames(pan_frames(4, 32, 24), tmp_path / "pan")
    options = {"size": 32, "steps": 6, "frame_steps": 6, "device": "cpu"}
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert run_here(prepare_videos([source], style, tmp_path / "local", **options)[0]).status == "complete"
    finally:
        torch.set_num_threads(before)
    runner = RayVideos(1, threads=1)
    killed: list = []

    def kill_after_the_first_frame(video, record, total) -> None:
        if not killed:
            killed.append(runner.actors[0])
            ray_cluster.kill(runner.actors[0], no_restart=True)

    try:
        [result] = runner.run(
            prepare_videos([source], style, tmp_path / "ray", **options), on_frame=kill_after_the_first_frame
        )
        now = list(runner.actors)
    finally:
        runner.close()
    assert killed and len(now) == 1 and now[0] is not killed[0], "the video did not move to a new actor"
    assert result.status == "complete" and result.done_now == 4
    for a, b in zip(sorted((tmp_path / "local").glob("*.png")), sorted((tmp_path / "ray").glob("*.png")), strict=True):
        assert np.array_equal(_pixels(str(a)), _pixels(str(b)))


def test_ray_actors_run_groups_as_batches(ray_cluster, photos, tmp_path):
    """``group=2``: each actor optimises two items in one batch; the pixels are the local grouped run's."""
    from styletransfer.batch.ray_executor import RayExecutor

    contents, style = photos
    options = {"size": 32, "steps": 3, "device": "cpu", "manifest": True}
    local = run_batch(
        make_items(contents, [style], tmp_path / "local", **options), tmp_path / "local", LocalExecutor(1, 1, group=2)
    )
    executor = RayExecutor(2, threads=1, group=2)
    try:
        remote = run_batch(make_items(contents, [style], tmp_path / "ray", **options), tmp_path / "ray", executor)
    finally:
        executor.close()
    assert local.line() == remote.line() == "4 done, 0 skipped, 0 failed"
    for i in range(4):
        name = f"p{i}_style.png"
        assert np.array_equal(_pixels(str(tmp_path / "local" / name)), _pixels(str(tmp_path / "ray" / name)))
        assert (tmp_path / "ray" / f"{name}.json").is_file()


def test_the_actors_of_a_node_share_one_weights_file_named_by_its_sha256(tmp_path):
    weights = b"weights v1" * 1000
    first = local_weights(weights, tmp_path)
    stat = first.stat()
    again = local_weights(weights, tmp_path)
    assert again == first and again.read_bytes() == weights
    assert (again.stat().st_ino, again.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)  # not rewritten
    first.write_bytes(weights[:100])  # a copy cut short (a node that died while writing an old version)
    assert local_weights(weights, tmp_path).read_bytes() == weights
    other = local_weights(b"weights v2", tmp_path)
    assert other != first
    assert sorted(p.name for p in first.parent.iterdir()) == sorted([first.name, other.name])  # no partial file left
    assert first.parent == tmp_path / f"styletransfer-{os.getuid()}" and first.name.startswith("weights-")


def test_the_weights_cache_is_a_private_folder(tmp_path):
    """``/tmp`` is shared: the copies live in a 0700 folder of the user's, never under a name others can take."""
    import stat

    from styletransfer.fileio import UnsafeFolder

    folder = tmp_path / f"styletransfer-{os.getuid()}"
    copy = local_weights(b"w" * 100, tmp_path)
    assert copy.parent == folder and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert folder.stat().st_uid == os.getuid()

    # Writable by others: anyone may have planted a copy; the folder is made again, private.
    os.chmod(folder, 0o777)
    planted = folder / "weights-planted.bin"
    planted.write_bytes(b"not ours")
    assert local_weights(b"w" * 100, tmp_path).read_bytes() == b"w" * 100
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and not planted.exists()

    # A link (to a folder others control) or another user's folder under that name: refused.
    shutil.rmtree(folder)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    folder.symlink_to(elsewhere)
    with pytest.raises(UnsafeFolder, match="is a link or a file"):
        local_weights(b"w" * 100, tmp_path)
    assert list(elsewhere.iterdir()) == []
    folder.unlink()
    folder.mkdir(mode=0o700)
    if os.getuid() == 0:  # root can give it away, as another user's would be
        os.chown(folder, 4242, 4242)
        with pytest.raises(UnsafeFolder, match="belongs to another user"):
            local_weights(b"w" * 100, tmp_path)
        assert list(folder.iterdir()) == []


def test_item_folders_of_processes_that_are_gone_are_swept(tmp_path):
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{ITEM_PREFIX}{int(gone.stdout)}-abc"
    (dead / "in").mkdir(parents=True)
    (dead / "in" / "0_photo.png").write_bytes(b"the user's picture")
    mine = tmp_path / f"{ITEM_PREFIX}{os.getpid()}-def"
    mine.mkdir()
    other = tmp_path / f"{ITEM_PREFIX}notapid"
    other.mkdir()
    assert sweep_items(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name])
