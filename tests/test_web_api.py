"""The studio's HTTP API with FastAPI's test client: every endpoint and every refusal (issue 12)."""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from styletransfer.options import OPTIONS
from styletransfer.web.store import valid_id
from tests.web_client import BASE, png, studio_client


@pytest.fixture(scope="module")
def images() -> dict[str, bytes]:
    from styletransfer.examples import example_path

    return {
        "content": png(example_path("tubingen.jpg"), (48, 36)),
        "style": png(example_path("starry_night.jpg"), (48, 36)),
    }


def _submit(client: TestClient, images: dict[str, bytes], styles: int = 1, **options: Any) -> Any:
    files = [("content", ("c.png", images["content"], "image/png"))]
    files += [("style", (f"s{i}.png", images["style"], "image/png")) for i in range(styles)]
    return client.post("/api/jobs", files=files, data={"options": json.dumps(options)})


def _events(client: TestClient, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    found, kind = [], ""
    with client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                found.append((kind, json.loads(line[6:])))
    return found


def _wait(client: TestClient, job_id: str, until: Any, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if until(job):
            return job  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never got there: {job}")


def _data(tmp_path: Path) -> tuple[set[str], list[Path]]:
    jobs = {p.name for p in (tmp_path / "data" / "jobs").iterdir()}
    return jobs, list((tmp_path / "data" / "tmp").iterdir())


def test_health(client: TestClient) -> None:
    assert client.get("/api/health").json() == {"status": "ok"}


def test_options_come_from_the_option_table(client: TestClient) -> None:
    table = client.get("/api/options").json()
    assert [o["name"] for o in table["options"]] == [o.name for o in OPTIONS]
    size = next(o for o in table["options"] if o["name"] == "size")
    assert size["type"] == "int" and size["minimum"] == 1 and size["help"] and size["web"]
    assert not next(o for o in table["options"] if o["name"] == "weights")["web"]
    assert "fast" in table["presets"] and table["schema"]["type"] == "object"


def test_the_page_and_its_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "styletransfer studio" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing fetched from elsewhere
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/api/examples/tubingen.jpg").headers["content-type"] == "image/jpeg"
    assert client.get("/api/examples/..%2Fvgg.py").status_code == 404


def test_estimate_has_the_dry_run_keys(client: TestClient) -> None:
    plan = client.get("/api/estimate?size=40&steps=3&preset=fast&width=48&height=36").json()
    assert {"scales", "evaluations", "seconds", "peak_bytes"} <= set(plan)
    assert plan["evaluations"] == [3]
    bad = client.get("/api/estimate?size=0")
    assert bad.status_code == 422 and bad.json()["field"] == "size"
    assert client.get("/api/estimate?colour=red").json()["field"] == "colour"
    assert client.get("/api/estimate?size=99999").json()["field"] == "size"


def test_the_estimate_says_what_a_time_budget_buys(client: TestClient) -> None:
    plan = client.get("/api/estimate?size=40&steps=50&preset=fast&width=48&height=36&time=30").json()
    assert plan["budget"]["seconds"] == 30
    (bought,) = plan["budget"]["evaluations"]
    assert 1 <= bought <= 50 and plan["seconds"] <= 30
    assert client.get("/api/estimate?size=40&steps=50&width=48&height=36").json()["budget"] is None
    for bad in ("0", "-1", "abc", "1e9", "nan", "inf"):
        answer = client.get(f"/api/estimate?time={bad}")
        assert answer.status_code == 422 and answer.json()["field"] == "time" and "time" in answer.json()["detail"]


def test_a_budgeted_job_ends_done_at_its_budget_with_an_eta_within_it(
    client: TestClient, images: dict[str, bytes]
) -> None:
    job_id = _submit(client, images, size=40, steps=100000, time=4).json()["id"]
    running = _wait(client, job_id, lambda j: j["status"] == "running" and j["step"] >= 1 and j["eta_seconds"])
    assert running["eta_seconds"] <= 4  # what is left of the budget, not 100000 steps' worth
    begun = time.monotonic()
    job = _wait(client, job_id, lambda j: j["status"] not in ("queued", "running"), timeout=30)
    assert time.monotonic() - begun <= 4 + 3  # the save and the polling on a loaded machine
    assert job["status"] == "done" and job["has_result"] and 1 <= job["step"] < 100000
    assert job["options"]["time"] == 4


def test_a_job_runs_to_the_end(client: TestClient, images: dict[str, bytes], tmp_path: Path) -> None:
    created = _submit(client, images, styles=2, size=40, steps=4, seed=3)
    assert created.status_code == 201
    job_id = created.json()["id"]
    assert created.json() == {"id": job_id, "status": "queued"} and valid_id(job_id)
    events = _events(client, job_id)
    kinds = [k for k, _ in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) <= {"progress"}
    progress = [d for k, d in events if k == "progress"]
    assert progress and progress[-1]["total"] == 4
    keys = {"step", "total", "size", "style", "content", "tv", "loss", "elapsed", "eta_seconds", "stop_rule"}
    assert set(progress[0]) == keys
    assert progress[0]["stop_rule"] is True  # the default preset may stop before its cap ("at most" in the page)
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job == events[-1][1]
    assert {"id", "status", "step", "total", "loss", "eta_seconds", "error", "options", "created", "finished"} <= set(
        job
    )
    assert job["status"] == "done" and job["step"] == 4 and job["options"] == {"size": 40, "steps": 4, "seed": 3}
    assert job["finished"] is not None and job["error"] is None
    result = client.get(f"/api/jobs/{job_id}/result.png")
    assert result.status_code == 200 and Image.open(io.BytesIO(result.content)).size == (40, 30)
    manifest = client.get(f"/api/jobs/{job_id}/manifest.json").json()
    assert manifest  # the engine's manifest: settings, hashes, loss terms
    assert client.get(f"/api/jobs/{job_id}/preview.jpg").headers["content-type"] == "image/jpeg"
    assert client.get(f"/api/jobs/{job_id}/content").status_code == 200
    assert client.get(f"/api/jobs/{job_id}/style/1").status_code == 200
    assert client.get(f"/api/jobs/{job_id}/style/2").status_code == 404
    # a client that connects after the end still gets the last event
    assert _events(client, job_id) == [("done", job)]
    # removing it takes its files
    assert client.delete(f"/api/jobs/{job_id}").status_code == 204
    assert client.get(f"/api/jobs/{job_id}").status_code == 404
    assert _data(tmp_path) == (set(), [])


def test_a_tutorial_job_has_no_stopping_rule(client: TestClient, images: dict[str, bytes]) -> None:
    job_id = _submit(client, images, preset="tutorial", size=32, steps=2).json()["id"]
    events = _events(client, job_id)
    progress = [d for k, d in events if k == "progress"]
    assert events[-1][0] == "done" and progress and all(d["stop_rule"] is False for d in progress)
    assert events[-1][1]["stop_rule"] is False  # the job itself says so too (a reopened page reads it)
    default = _submit(client, images, size=32, steps=2).json()["id"]
    assert client.get(f"/api/jobs/{default}").json()["stop_rule"] is True


def test_jobs_are_listed_newest_first_and_queued_ones_cancel_at_once(
    paused: TestClient, images: dict[str, bytes]
) -> None:
    first = _submit(paused, images, size=40, steps=2).json()["id"]
    second = _submit(paused, images, size=40, steps=2).json()["id"]
    assert first != second
    listed = paused.get("/api/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [second, first]
    assert all(j["status"] == "queued" for j in listed)
    assert all(j["stop_rule"] is True for j in listed)
    assert paused.get(f"/api/jobs/{first}/preview.jpg").status_code == 404
    assert paused.get(f"/api/jobs/{first}/result.png").status_code == 404
    assert paused.get(f"/api/jobs/{first}/manifest.json").status_code == 404
    assert paused.delete(f"/api/jobs/{first}").status_code == 409  # not finished: cancel first
    cancelled = paused.post(f"/api/jobs/{first}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert paused.post(f"/api/jobs/{first}/cancel").status_code == 409
    assert _events(paused, first)[-1][0] == "cancelled"
    assert paused.delete(f"/api/jobs/{first}").status_code == 204


def test_a_running_job_cancels_within_an_evaluation_and_keeps_its_image(
    client: TestClient, images: dict[str, bytes]
) -> None:
    job_id = _submit(client, images, size=40, steps=5000).json()["id"]
    _wait(client, job_id, lambda j: j["status"] == "running" and j["step"] >= 2)
    preview = client.get(f"/api/jobs/{job_id}/preview.jpg")
    assert preview.status_code == 200 and Image.open(io.BytesIO(preview.content)).format == "JPEG"
    assert client.get(f"/api/jobs/{job_id}").json()["eta_seconds"] is not None
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    job = _wait(client, job_id, lambda j: j["status"] == "cancelled", timeout=30)
    assert job["has_result"] and 2 <= job["step"] < 5000
    assert client.get(f"/api/jobs/{job_id}/result.png").status_code == 200


def test_unknown_jobs_are_404_and_ids_never_reach_the_file_system(client: TestClient) -> None:
    for path in ("zzzzzzzzzzzzzzzz", "..", "%2E%2E%2Fjobs.sqlite3", "a" * 16):
        assert client.get(f"/api/jobs/{path}").status_code == 404
        assert client.get(f"/api/jobs/{path}/result.png").status_code == 404
        assert client.post(f"/api/jobs/{path}/cancel").status_code == 404
        assert client.delete(f"/api/jobs/{path}").status_code == 404
    assert client.get("/api/jobs/zzzzzzzzzzzzzzzz/events").status_code == 404


def test_a_job_in_tiles_runs_and_its_manifest_records_the_tile_size(
    client: TestClient, images: dict[str, bytes]
) -> None:
    job_id = _submit(client, images, size=48, steps=2, preset="tutorial", tile_size=208).json()["id"]
    job = _wait(client, job_id, lambda j: j["status"] not in ("queued", "running"))
    assert job["status"] == "done" and job["options"]["tile_size"] == 208, job
    manifest = client.get(f"/api/jobs/{job_id}/manifest.json").json()
    assert '"tile_size": 208' in json.dumps(manifest)


BAD_OPTIONS = [
    ({"colour": "red"}, "colour"),
    ({"size": "big"}, "size"),
    ({"size": 0}, "size"),
    ({"size": 4096}, "size"),  # over --max-size
    ({"steps": -1}, "steps"),
    ({"preserve_colors": "sepia"}, "preserve_colors"),
    ({"style_blend": [1, 2]}, "style_blend"),  # two weights, one style
    ({"init": "/etc/passwd"}, "init"),  # no paths from a request
    ({"weights": "/tmp/w.bin"}, "weights"),
    ({"log": "/tmp/log.csv"}, "log"),
    ({"preset": "best"}, "preset"),
    ({"time": 0}, "time"),
    ({"time": -1}, "time"),
    ({"time": "abc"}, "time"),
    ({"time": 1e9}, "time"),  # over a week
    ({"time": math.nan}, "time"),  # json.dumps writes NaN, which the server's json.loads reads
    ({"tile_size": 100}, "tile_size"),  # smaller than the layers' halo
    ({"tile_size": "big"}, "tile_size"),
    ({"preset": "instant", "tile_size": 512}, "tile_size"),  # the instant preset has no tiles
]


@pytest.mark.parametrize(("options", "field"), BAD_OPTIONS)
def test_bad_options_are_422_naming_the_field_and_leave_nothing(
    paused: TestClient, images: dict[str, bytes], tmp_path: Path, options: dict[str, Any], field: str
) -> None:
    answer = _submit(paused, images, **options)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field and field in answer.json()["detail"]
    assert paused.get("/api/jobs").json() == {"jobs": [], "next": None}
    assert _data(tmp_path) == (set(), [])


def _bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buf, "PNG")  # 144 megapixels in a few kB
    return buf.getvalue()


@pytest.mark.parametrize(
    ("files", "data", "field"),
    [
        (
            [("content", ("c.png", b"not an image", "image/png")), ("style", ("s.png", "STYLE", "image/png"))],
            {},
            "content",
        ),
        ([("content", ("c.png", "CONTENT", "image/png")), ("style", ("s.png", b"GIF89a..", "image/gif"))], {}, "style"),
        ([("content", ("c.png", "BOMB", "image/png")), ("style", ("s.png", "STYLE", "image/png"))], {}, "content"),
        ([("content", ("c.png", "CONTENT", "image/png"))], {}, "style"),
        ([("style", ("s.png", "STYLE", "image/png"))], {}, "content"),
        (
            [("content", ("c.png", "CONTENT", "image/png")), ("style", ("s.png", "STYLE", "image/png"))],
            {"options": "{"},
            "options",
        ),
        (
            [("content", ("c.png", "CONTENT", "image/png")), ("style", ("s.png", "STYLE", "image/png"))],
            {"options": "[1]"},
            "options",
        ),
        (
            [("content", ("c.png", "CONTENT", "image/png")), ("style", ("s.png", "STYLE", "image/png"))],
            {"extra": "1"},
            "extra",
        ),
    ],
)
def test_bad_uploads_are_422_naming_the_field_and_leave_nothing(
    paused: TestClient, images: dict[str, bytes], tmp_path: Path, files: Any, data: Any, field: str
) -> None:
    real = {"CONTENT": images["content"], "STYLE": images["style"], "BOMB": _bomb()}
    files = [(name, (fn, real.get(body, body) if isinstance(body, str) else body, t)) for name, (fn, body, t) in files]
    answer = paused.post("/api/jobs", files=files, data=data)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert paused.get("/api/jobs").json() == {"jobs": [], "next": None}
    assert _data(tmp_path) == (set(), [])


def test_an_upload_over_the_limit_is_413_as_it_streams(tmp_path: Path, images: dict[str, bytes]) -> None:
    for client in studio_client(tmp_path, max_upload_mb=0.05, run_jobs=False):
        big = b"\x89PNG" + bytes(200_000)
        answer = client.post("/api/jobs", files=[("content", ("c.png", big, "image/png"))])
        assert answer.status_code == 413 and answer.json()["field"] == "content"

        def chunks() -> Iterator[bytes]:  # no Content-Length: cut off by counting the body as it comes
            boundary = b'--xyz\r\nContent-Disposition: form-data; name="content"; filename="c.png"\r\n\r\n'
            yield boundary
            for _ in range(100):
                yield bytes(10_000)

        answer = client.post(
            "/api/jobs", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xyz"}
        )
        assert answer.status_code == 413
        assert _submit(client, images).status_code == 201  # a small one still goes in
        assert len(client.get("/api/jobs").json()["jobs"]) == 1
        assert list((tmp_path / "data" / "tmp").iterdir()) == []


def test_foreign_hosts_and_origins_are_refused(paused: TestClient, images: dict[str, bytes]) -> None:
    assert paused.get("/api/health", headers={"host": "evil.example:8000"}).status_code == 400
    assert paused.get("/api/health", headers={"host": "localhost:8000"}).status_code == 200
    foreign = {"origin": "http://evil.example"}
    files = [("content", ("c.png", images["content"], "image/png")), ("style", ("s.png", images["style"], "image/png"))]
    assert paused.post("/api/jobs", files=files, headers=foreign).status_code == 403
    assert paused.post("/api/jobs", files=files, headers={"origin": "null"}).status_code == 403
    assert paused.get("/api/jobs").json() == {"jobs": [], "next": None}
    assert paused.get("/api/health", headers=foreign).status_code == 200  # reading is not changing
    assert paused.post("/api/jobs", files=files, headers={"origin": BASE}).status_code == 201


def test_a_token_guards_every_request(tmp_path: Path) -> None:
    for client in studio_client(tmp_path, token="s3cret", run_jobs=False):
        assert client.get("/api/health").status_code == 401
        assert client.get("/").status_code == 401
        assert client.get("/static/app.js").status_code == 401
        assert client.get("/api/health?token=wrong").status_code == 401
        assert client.get("/api/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/api/health?token=s3cret").status_code == 200
        page = client.get("/?token=s3cret")  # the printed URL: the page keeps the token in a cookie
        assert page.status_code == 200 and "studio_token" in page.headers["set-cookie"]
        assert client.get("/static/app.js").status_code == 200


def test_a_job_stored_by_another_version_is_still_listed(
    paused: TestClient, images: dict[str, bytes], tmp_path: Path
) -> None:
    import sqlite3

    job_id = _submit(paused, images, size=40, steps=2).json()["id"]
    stored = json.loads(_stored_job(tmp_path, job_id))
    stored["options"]["an_option_of_the_future"] = 1
    with sqlite3.connect(tmp_path / "data" / "jobs.sqlite3") as db:
        db.execute("UPDATE jobs SET job = ? WHERE id = ?", (json.dumps(stored), job_id))
    listed = paused.get("/api/jobs")
    assert listed.status_code == 200
    assert [(j["id"], j["stop_rule"]) for j in listed.json()["jobs"]] == [(job_id, None)]


def _stored_job(tmp_path: Path, job_id: str) -> str:
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "jobs.sqlite3") as db:
        return str(db.execute("SELECT job FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])
