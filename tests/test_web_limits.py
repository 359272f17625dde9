"""The studio's limits: no server paths from a request, bounded requests, quotas, a runner that survives bad rows."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from styletransfer.options import OPTIONS
from styletransfer.web import studio as studio_module
from styletransfer.web.checks import NOT_IN_STUDIO, WEB_OPTIONS
from styletransfer.web.queue import Queue
from styletransfer.web.server import Config
from styletransfer.web.store import QUEUED, RUNNING, Store
from tests.web_client import png, studio_client


@pytest.fixture(scope="module")
def images() -> dict[str, bytes]:
    from styletransfer.examples import example_path

    half = Image.new("L", (48, 36), 0)
    half.paste(255, (0, 0, 24, 36))
    buf = io.BytesIO()
    half.save(buf, "PNG")
    return {
        "content": png(example_path("tubingen.jpg"), (48, 36)),
        "style": png(example_path("starry_night.jpg"), (48, 36)),
        "mask": buf.getvalue(),
    }


def _files(images: dict[str, bytes], styles: int = 1, **extra: int) -> list[tuple[str, Any]]:
    files = [("content", ("c.png", images["content"], "image/png"))]
    files += [("style", (f"s{i}.png", images["style"], "image/png")) for i in range(styles)]
    for name, count in extra.items():
        files += [(name, (f"{name}{i}.png", images["mask"], "image/png")) for i in range(count)]
    return files


def _submit(client: TestClient, images: dict[str, bytes], styles: int = 1, **options: Any) -> Any:
    return client.post("/api/jobs", files=_files(images, styles), data={"options": json.dumps(options)})


def _wait(client: TestClient, job_id: str, until: Any, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never got there: {job}")


def _left(tmp_path: Path) -> tuple[list[str], list[Path]]:
    data = tmp_path / "data"
    return [p.name for p in (data / "jobs").iterdir()], list((data / "tmp").iterdir())


# --- Path options --------------------------------------------------------------------------------

PATH_WORDS = ("PATH", "DIR", "FILE", "MASK")
PATH_OPTIONS = [o for o in OPTIONS if o.metavar is not None and any(w in o.metavar for w in PATH_WORDS)]


def test_the_walk_finds_every_path_option() -> None:
    names = {o.name for o in PATH_OPTIONS}
    assert {"init", "masks", "style_masks", "fine_style", "weights", "log", "figures", "save_masks"} <= names


@pytest.mark.parametrize("opt", PATH_OPTIONS, ids=lambda o: o.name)
def test_every_option_that_takes_a_path_is_refused_by_jobs_and_the_estimate(
    paused: TestClient, images: dict[str, bytes], tmp_path: Path, opt: Any
) -> None:
    value: Any = ["/etc/hostname"] if opt.many else "/etc/hostname"
    answer = _submit(paused, images, **{opt.name: value})
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == opt.name and opt.name in answer.json()["detail"]
    assert "directory" not in answer.json()["detail"] and "hostname" not in answer.json()["detail"]
    assert _left(tmp_path) == ([], [])
    estimate = paused.get("/api/estimate", params={opt.name: "/etc/hostname", "width": 48, "height": 36})
    assert estimate.status_code == 422, estimate.text
    assert estimate.json()["field"] == opt.name


def test_the_allow_list_decides_and_every_option_is_on_one_side(client: TestClient) -> None:
    names = {o.name for o in OPTIONS}
    assert WEB_OPTIONS | set(NOT_IN_STUDIO) == names and not WEB_OPTIONS & set(NOT_IN_STUDIO)
    table = client.get("/api/options").json()["options"]
    assert {o["name"] for o in table if o["web"]} == WEB_OPTIONS
    for name in ("masks", "style_masks", "fine_style", "save_masks", "weights", "log", "figures"):
        assert name not in WEB_OPTIONS


def test_masks_and_a_fine_style_come_as_uploads_and_the_server_names_their_paths(
    client: TestClient, images: dict[str, bytes], tmp_path: Path
) -> None:
    files = _files(images, styles=2, mask=2, style_mask=2, fine_style=1)
    files[-1] = ("fine_style", ("f.png", images["style"], "image/png"))
    answer = client.post("/api/jobs", files=files, data={"options": json.dumps({"size": 32, "steps": 2})})
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["id"]
    job = _wait(client, job_id, lambda j: j["status"] not in (QUEUED, RUNNING))
    assert job["status"] == "done", job
    assert job["options"] == {"size": 32, "steps": 2}  # the saved paths are the server's business
    with sqlite3.connect(tmp_path / "data" / "jobs.sqlite3") as db:
        stored = json.loads(db.execute("SELECT job FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])
    folder = tmp_path / "data" / "jobs" / job_id
    assert stored["options"]["masks"] == [str(folder / "mask0.png"), str(folder / "mask1.png")]
    assert stored["options"]["style_masks"] == [str(folder / "style_mask0.png"), str(folder / "style_mask1.png")]
    assert stored["options"]["fine_style"] == str(folder / "fine_style.png")
    assert all(Path(p).is_file() for p in stored["options"]["masks"])


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"mask": 1}, "mask"), ({"style_mask": 3}, "style_mask"), ({"fine_style": 2}, "fine_style")],
)
def test_mask_uploads_are_checked_like_images(
    paused: TestClient, images: dict[str, bytes], tmp_path: Path, extra: dict[str, int], field: str
) -> None:
    answer = paused.post("/api/jobs", files=_files(images, 2, **extra))
    assert answer.status_code == 422 and answer.json()["field"] == field
    bad = [*_files(images, 1), (field, ("m.png", b"not an image", "image/png"))]
    answer = paused.post("/api/jobs", files=bad)
    assert answer.status_code == 422 and answer.json()["field"] == field
    assert _left(tmp_path) == ([], [])


# --- One request may not take the machine ----------------------------------------------------------


def test_the_estimate_is_bounded_at_once(client: TestClient) -> None:
    for query, field in [
        ("styles=17", "styles"),
        ("styles=20000", "styles"),
        ("width=2049&height=10", "width"),
        ("width=10&height=20000", "height"),
        ("width=%C2%B2", "width"),
        ("steps=1000000000000", "steps"),
    ]:
        started = time.monotonic()
        answer = client.get("/api/estimate?" + query)
        assert answer.status_code == 422 and answer.json()["field"] == field, (query, answer.text)
        assert time.monotonic() - started < 2.0
    assert client.get("/api/estimate?styles=16&width=48&height=36&size=32&steps=2").status_code == 200


def test_the_estimate_cache_keeps_only_the_newest(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(studio_module, "ESTIMATE_CACHE", 2)
    for steps in (2, 3, 4, 2):
        assert client.get(f"/api/estimate?width=48&height=36&size=32&steps={steps}").status_code == 200
    studio = client.app.state.studio  # type: ignore[attr-defined]
    assert len(studio._estimates) == 2


def test_one_estimate_at_a_time_and_no_thread_waits_for_it(client: TestClient) -> None:
    query = "/api/estimate?width=48&height=36&size=32&steps=2"
    assert client.get(query).status_code == 200
    studio = client.app.state.studio  # type: ignore[attr-defined]
    with studio._estimate_lock:  # an estimate in progress
        assert client.get(query).status_code == 200  # a cached answer still comes
        started = time.monotonic()
        busy = client.get(query.replace("steps=2", "steps=3"))
        assert busy.status_code == 429 and time.monotonic() - started < 2.0
    assert client.get(query.replace("steps=2", "steps=3")).status_code == 200


def test_cross_site_requests_of_the_api_are_refused(client: TestClient) -> None:
    answer = client.get("/api/estimate?width=48&height=36", headers={"sec-fetch-site": "cross-site"})
    assert answer.status_code == 403 and "Sec-Fetch-Site" in answer.json()["detail"]
    assert client.get("/api/jobs", headers={"sec-fetch-site": "same-site"}).status_code == 403
    assert client.get("/api/health", headers={"sec-fetch-site": "same-origin"}).status_code == 200
    assert client.get("/", headers={"sec-fetch-site": "cross-site"}).status_code == 200  # a link to the page


def test_the_pixels_of_one_job_are_limited_from_the_headers(tmp_path: Path, images: dict[str, bytes]) -> None:
    for client in studio_client(tmp_path, max_job_pixels=3 * 48 * 36, run_jobs=False):
        assert _submit(client, images, styles=2).status_code == 201
        answer = _submit(client, images, styles=3)
        assert answer.status_code == 422 and answer.json()["field"] == "style"
        assert "per job" in answer.json()["detail"]
        answer = client.post("/api/jobs", files=_files(images, 2, mask=2))
        assert answer.status_code == 422 and answer.json()["field"] == "mask"


def test_a_job_whose_images_would_not_fit_in_memory_is_refused_before_decoding(
    tmp_path: Path, images: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    from styletransfer.web.checks import DECODE_BYTES_PER_PIXEL

    monkeypatch.setattr(studio_module, "free_memory", lambda: 2 * 48 * 36 * DECODE_BYTES_PER_PIXEL)
    for client in studio_client(tmp_path, run_jobs=False):
        assert _submit(client, images, styles=1).status_code == 201
        answer = _submit(client, images, styles=2)
        assert answer.status_code == 422 and answer.json()["field"] == "style"
        assert "memory" in answer.json()["detail"]


# --- Quotas ---------------------------------------------------------------------------------------------


def test_every_count_has_a_maximum_and_steps_is_bounded(paused: TestClient, images: dict[str, bytes]) -> None:
    assert all(o.maximum is not None for o in OPTIONS if o.type == "int")
    answer = _submit(paused, images, steps=10**12)
    assert answer.status_code == 422 and answer.json()["field"] == "steps"


def test_the_queue_holds_at_most_max_queued(tmp_path: Path, images: dict[str, bytes]) -> None:
    for client in studio_client(tmp_path, max_queued=2, run_jobs=False):
        first = _submit(client, images).json()["id"]
        assert _submit(client, images).status_code == 201
        full = _submit(client, images)
        assert full.status_code == 429 and "--max-queued" in full.json()["detail"]
        assert set(full.json()) == {"detail", "field"}
        assert len(_left(tmp_path)[0]) == 2 and _left(tmp_path)[1] == []
        client.post(f"/api/jobs/{first}/cancel")
        assert _submit(client, images).status_code == 201


def test_a_nearly_full_disk_refuses_new_jobs(tmp_path: Path, images: dict[str, bytes]) -> None:
    assert Config(tmp_path, max_upload_mb=25).disk_margin == (10 * 25 + 200) * 1024 * 1024
    for client in studio_client(tmp_path, min_free_mb=1e12, run_jobs=False):
        answer = _submit(client, images)
        assert answer.status_code == 507 and "--min-free-mb" in answer.json()["detail"]
        assert _left(tmp_path) == ([], [])


# --- The runner --------------------------------------------------------------------------------------


def test_a_bad_stored_job_fails_with_its_reason_and_the_next_one_runs(tmp_path: Path, images: dict[str, bytes]) -> None:
    for client in studio_client(tmp_path, run_jobs=False):
        bad = _submit(client, images, size=32, steps=2).json()["id"]
        good = _submit(client, images, size=32, steps=2).json()["id"]
    with sqlite3.connect(tmp_path / "data" / "jobs.sqlite3") as db:  # the real file, as another version left it
        db.execute("UPDATE jobs SET job = ? WHERE id = ?", ('{"content": "c.png"}', bad))
    for client in studio_client(tmp_path):
        failed = _wait(client, bad, lambda j: j["status"] not in (QUEUED, RUNNING))
        assert failed["status"] == "failed" and failed["error"]
        assert _wait(client, good, lambda j: j["status"] not in (QUEUED, RUNNING))["status"] == "done"
    for client in studio_client(tmp_path, run_jobs=False):  # after a restart it stays failed
        assert client.get(f"/api/jobs/{bad}").json()["status"] == "failed"


def test_a_dead_runner_is_started_again(
    client: TestClient, images: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Queue._run
    started: list[str] = []

    def dies_once(self: Queue, device: str) -> None:
        started.append(device)
        if len(started) > 1:
            real(self, device)  # the first runner ends at once, as if it had died

    monkeypatch.setattr(Queue, "_run", dies_once)
    first = _submit(client, images, size=32, steps=2).json()["id"]
    queue = client.app.state.studio.queue  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while any(t.is_alive() for t in queue._threads.values()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = _submit(client, images, size=32, steps=2).json()["id"]
    for job_id in (first, second):
        assert _wait(client, job_id, lambda j: j["status"] not in (QUEUED, RUNNING))["status"] == "done"
    assert len(started) == 2


def test_a_job_claimed_by_another_process_is_not_claimed_again(tmp_path: Path, images: dict[str, bytes]) -> None:
    for client in studio_client(tmp_path, run_jobs=False):
        job_id = _submit(client, images).json()["id"]
    ours, theirs = Store(tmp_path / "data"), Store(tmp_path / "data")
    real = ours._db

    class Rows(list[Any]):
        def fetchone(self) -> Any:
            return self[0] if self else None

    class Between:
        """The connection, with the other process's claim slipped in between our look and our claim."""

        def execute(self, sql: str, *args: Any) -> Any:
            cursor = real.execute(sql, *args)
            if not sql.startswith("SELECT * FROM jobs WHERE status"):
                return cursor
            found = cursor.fetchone()
            if found is not None:
                assert theirs.next_queued("auto") is not None
            return Rows([] if found is None else [found])

    ours._db = Between()  # type: ignore[assignment]
    try:
        assert ours.next_queued("auto") is None
    finally:
        ours._db = real
        ours.close()
        theirs.close()
    with sqlite3.connect(tmp_path / "data" / "jobs.sqlite3") as db:
        assert db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()[0] == RUNNING


# --- Browser-facing ----------------------------------------------------------------------------------


def test_every_answer_forbids_framing(tmp_path: Path) -> None:
    for client in studio_client(tmp_path, token="t" * 16, run_jobs=False):
        for answer in (
            client.get("/?token=" + "t" * 16),
            client.get("/static/app.js"),
            client.get("/api/jobs/zzzzzzzzzzzzzzzz"),
            client.get("/api/health", headers={"authorization": "Bearer wrong"}),
            client.get("/api/health", headers={"host": "evil.example"}),
        ):
            assert answer.headers["x-frame-options"] == "DENY", answer.url
            assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_jobs_are_listed_a_page_at_a_time(paused: TestClient, images: dict[str, bytes]) -> None:
    ids = [_submit(paused, images).json()["id"] for _ in range(3)]
    first = paused.get("/api/jobs?limit=2").json()
    assert [j["id"] for j in first["jobs"]] == ids[:0:-1] and first["next"] is not None
    rest = paused.get(f"/api/jobs?limit=2&before={first['next']}").json()
    assert [j["id"] for j in rest["jobs"]] == ids[:1] and rest["next"] is None
    assert paused.get("/api/jobs").json()["next"] is None
    for bad in ("limit=0", "limit=201", "before=x", "offset=3"):
        answer = paused.get("/api/jobs?" + bad)
        assert answer.status_code == 422 and answer.json()["field"] == bad.split("=")[0]


def test_an_event_stream_ends_after_its_time(tmp_path: Path, images: dict[str, bytes]) -> None:
    for client in studio_client(tmp_path, stream_seconds=0.5, run_jobs=False):
        job_id = _submit(client, images).json()["id"]
        started = time.monotonic()
        answer = client.get(f"/api/jobs/{job_id}/events")
        assert answer.status_code == 200 and time.monotonic() - started < 5
        assert "retry: " in answer.text and "event:" not in answer.text  # the page's EventSource reconnects


def test_event_streams_are_capped(tmp_path: Path, images: dict[str, bytes]) -> None:
    clients = studio_client(tmp_path, max_streams=1, stream_seconds=3.0, run_jobs=False)
    client = next(clients)
    job_id = _submit(client, images).json()["id"]
    first: list[int] = []
    holder = threading.Thread(target=lambda: first.append(client.get(f"/api/jobs/{job_id}/events").status_code))
    holder.start()
    time.sleep(1.0)
    second = client.get(f"/api/jobs/{job_id}/events")
    assert second.status_code == 429 and second.json()["detail"]
    holder.join(20)
    assert first == [200]
    assert client.get(f"/api/jobs/{job_id}/events").status_code == 200  # the first one's place is free again
    clients.close()
