"""Batch and video on a two-node Ray cluster (``ray.cluster_utils.Cluster``) that shares no files.

Each node has its own Ray temporary directory and its own ``TMPDIR`` (where
the actors keep their copy of the weights and their item folders).  Every
Ray worker process runs with an audit hook that refuses to open, for
writing, any path under the driver's folder: outputs reach the disk only
through the driver.  The last test removes a node in the middle of a batch.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from styletransfer.batch import make_items, read_ledger, run_batch

ray = pytest.importorskip("ray")

#: The environment variable that names the folder only the driver may write in.
DRIVER_ONLY = "STYLETRANSFER_TEST_DRIVER_ONLY"


def _write_guard() -> Callable[[], None]:
    """A Ray worker's set-up hook (local, so that Ray ships it by value): writing under ``$DRIVER_ONLY`` raises."""

    def refuse_writes_under_the_driver_s_folder() -> None:
        """Opening (or renaming into) a path under ``$STYLETRANSFER_TEST_DRIVER_ONLY`` for writing raises."""
        import os
        import sys

        root = os.environ["STYLETRANSFER_TEST_DRIVER_ONLY"]
        writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND

        def inside(path: Any) -> bool:
            try:
                return os.path.abspath(os.fsdecode(path)).startswith(root + os.sep)
            except TypeError:  # a file descriptor
                return False

        def hook(event: str, args: tuple[Any, ...]) -> None:
            if event == "open":
                path, mode, flags = args
                writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                    isinstance(flags, int) and flags & writing
                )
                if writes and inside(path):
                    raise PermissionError(f"a Ray worker opened {path} for writing")
            elif event in ("os.rename", "os.replace", "os.link", "os.symlink") and inside(args[1]):
                raise PermissionError(f"a Ray worker wrote {args[1]}")

        sys.addaudithook(hook)

    return refuse_writes_under_the_driver_s_folder


@dataclass
class TwoNodes:
    """The cluster, its worker node, each node's ``TMPDIR`` and the folder only the driver writes in."""

    cluster: Any
    worker: Any
    tmpdirs: list[Path]
    driver: Path


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    from ray.cluster_utils import Cluster

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    driver = tmp_path_factory.mktemp("driver")
    roots = [Path(tempfile.mkdtemp(prefix="stn")) for _ in range(2)]  # short: Ray's socket paths have a limit

    def node(root: Path) -> dict[str, Any]:
        (root / "tmp").mkdir()
        env = {"TMPDIR": str(root / "tmp"), DRIVER_ONLY: str(driver), "RAY_USAGE_STATS_ENABLED": "0"}
        return {"num_cpus": 1, "temp_dir": str(root / "ray"), "env_vars": env}

    cluster = Cluster(initialize_head=True, head_node_args={**node(roots[0]), "include_dashboard": False})
    try:
        worker = cluster.add_node(**node(roots[1]))
        ray.init(
            address=cluster.address,
            log_to_driver=False,
            runtime_env={"worker_process_setup_hook": _write_guard()},
        )
        yield TwoNodes(cluster, worker, [r / "tmp" for r in roots], driver)
    finally:
        ray.shutdown()
        cluster.shutdown()
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)


def _weights_copies(tmpdir: Path) -> list[Path]:
    return list(tmpdir.glob("styletransfer-*/weights-*.bin"))


def test_each_node_s_workers_may_not_write_in_the_driver_s_folder(two_nodes: TwoNodes) -> None:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=0)
    def try_to_write(path: str) -> str:
        try:
            Path(path).write_bytes(b"x")
        except PermissionError as exc:
            return f"refused: {exc}"
        return "written"

    nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 2
    for node in nodes:
        strategy = NodeAffinitySchedulingStrategy(node, soft=False)
        answer = ray.get(try_to_write.options(scheduling_strategy=strategy).remote(str(two_nodes.driver / "probe")))
        assert answer.startswith("refused: a Ray worker opened")
    assert not (two_nodes.driver / "probe").exists()


def test_a_batch_runs_on_both_nodes_and_only_the_driver_writes(
    two_nodes: TwoNodes, photos: tuple[list[Path], Path]
) -> None:
    from styletransfer.batch.ray_executor import RayExecutor

    contents, style = photos
    out = two_nodes.driver / "batch"
    executor = RayExecutor(2, threads=1)
    try:
        summary = run_batch(
            make_items(contents, [style], out, size=32, steps=4, device="cpu", manifest=True), out, executor
        )
    finally:
        executor.close()
    assert summary.line() == "4 done, 0 skipped, 0 failed"
    assert sorted(p.name for p in out.glob("*.png")) == [f"p{i}_style.png" for i in range(4)]
    assert all((out / f"p{i}_style.png.json").is_file() for i in range(4))
    # An actor started on each node, with that node's own temporary folder: one weights copy each, no outputs.
    for tmpdir in two_nodes.tmpdirs:
        assert len(_weights_copies(tmpdir)) == 1
        assert not list(tmpdir.rglob("*.png"))


def test_two_videos_run_on_the_two_nodes_and_only_the_driver_writes(
    two_nodes: TwoNodes, photos: tuple[list[Path], Path]
) -> None:
    from styletransfer.video import prepare_videos
    from styletransfer.video.ray_videos import RayVideos
    from tests.clips import pan_frames, pan_zoom_clip, write_frames

    pytest.importorskip("cv2")
    _, style = photos
    sources = [
        write_frames(pan_frames(3, 32, 24), two_nodes.driver / "pan"),
        write_frames(pan_zoom_clip(1, 2, 32, 24).frames, two_nodes.driver / "zoom"),
    ]
    out = two_nodes.driver / "videos"
    runner = RayVideos(2, threads=1)
    try:
        results = runner.run(prepare_videos(sources, style, out, size=32, steps=3, device="cpu", long_term=2))
    finally:
        runner.close()
    assert [r.status for r in results] == ["complete"] * 2, [r.error for r in results]
    for name in ("pan", "zoom"):
        assert len(list((out / name).glob("*.png"))) == 3
    for tmpdir in two_nodes.tmpdirs:
        assert not list(tmpdir.rglob("*.png"))


def test_a_node_that_leaves_mid_batch_loses_nothing_and_redoes_nothing(
    two_nodes: TwoNodes, tubingen: Path, photos: tuple[list[Path], Path]
) -> None:
    """Runs last: the worker node leaves once the first item is back; the head node's actor finishes the batch."""
    from PIL import Image

    from styletransfer.batch.ray_executor import RayExecutor

    _, style = photos
    contents = []
    with Image.open(tubingen) as im:
        for i in range(8):
            path = two_nodes.driver / "in" / f"q{i}.png"
            path.parent.mkdir(exist_ok=True)
            im.crop((30 * i, 10 * i, 300 + 30 * i, 215 + 10 * i)).resize((32, 24), Image.BILINEAR).save(path)
            contents.append(path)
    out = two_nodes.driver / "left"
    executor = RayExecutor(2, threads=1, group=1)
    recorded: list[str] = []
    removed_after: list[int] = []

    def remove_the_worker_node(record: dict[str, Any]) -> None:
        recorded.append(Path(record["output"]).name)
        if not removed_after:
            two_nodes.cluster.remove_node(two_nodes.worker)
            removed_after.append(len(recorded))

    first = list(executor.actors)
    try:
        summary = run_batch(
            make_items(contents, [style], out, size=32, steps=8, device="cpu"),
            out,
            executor,
            on_record=remove_the_worker_node,
        )
        now = list(executor.actors)
    finally:
        executor.close()
    assert len(now) == 2 and len(set(map(id, now)) & set(map(id, first))) == 1  # the lost actor was replaced
    print(f"\nthe node left after {removed_after[0]} of 8 items; the ledger: {summary.line()}", file=sys.stderr)
    assert summary.line() == "8 done, 0 skipped, 0 failed"
    assert removed_after == [1] and len(recorded) == 8
    assert sorted(recorded) == [f"q{i}_style.png" for i in range(8)]  # each item recorded once: none redone
    ledger = read_ledger(out)
    assert len(ledger) == 8 and all(r["status"] == "complete" for r in ledger.values())
    assert sorted(p.name for p in out.glob("*.png")) == sorted(recorded)
    assert len([n for n in ray.nodes() if n["Alive"]]) == 1
