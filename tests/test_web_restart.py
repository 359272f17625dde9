"""The studio survives a crash: a real server process is killed during a job and started again (issue 12)."""

from __future__ import annotations

import io
import sqlite3
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from .studio_process import Server, serve

pytestmark = pytest.mark.slow


def _png(source: Path, size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.open(source).convert("RGB").resize(size, Image.BILINEAR).save(buf, "PNG")
    return buf.getvalue()


def submit(server: Server, content: bytes, style: bytes, options: str) -> str:
    """POST /api/jobs as a multipart form with the standard library."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, filename, body in (("content", "c.png", content), ("style", "s.png", style)):
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: image/png\r\n\r\n".encode()
            + body
            + b"\r\n"
        )
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="options"\r\n\r\n{options}\r\n'.encode())
    data = b"".join(parts) + f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        server.url + "/api/jobs", data=data, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert answer.status == 201
        import json

        return str(json.loads(answer.read())["id"])


def wait(server: Server, job_id: str, until: Any, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = server.get(f"/api/jobs/{job_id}")
        if until(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never got there: {job}")


def test_a_killed_server_resumes_its_running_job_from_the_snapshot(
    tmp_path: Path, tubingen: Path, starry: Path
) -> None:
    content, style = _png(tubingen, (48, 36)), _png(starry, (48, 36))
    data = tmp_path / "data"
    with serve(data) as server:
        finished = submit(server, content, style, '{"size": 40, "steps": 3}')
        wait(server, finished, lambda j: j["status"] == "done")
        running = submit(server, content, style, '{"size": 40, "steps": 80}')
        queued = submit(server, content, style, '{"size": 40, "steps": 3}')
        snapshot = data / "jobs" / running / "snapshot.png"
        deadline = time.monotonic() + 120
        while not snapshot.is_file():  # the runner leaves a snapshot every 2 s
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.1)
        before = server.get(f"/api/jobs/{running}")
        assert before["status"] == "running" and server.get(f"/api/jobs/{queued}")["status"] == "queued"
        server.kill()
    with sqlite3.connect(data / "jobs.sqlite3") as db:
        (snapshot_step,) = db.execute("SELECT snapshot_step FROM jobs WHERE id = ?", (running,)).fetchone()
    assert 0 < snapshot_step < 80
    with serve(data) as server:
        jobs = {j["id"]: j for j in server.get("/api/jobs")["jobs"]}
        assert jobs[finished]["status"] == "done" and jobs[finished]["has_result"]
        assert jobs[queued]["status"] in ("queued", "running", "done")
        resumed = wait(server, running, lambda j: j["status"] in ("running", "done") and j["step"] > snapshot_step)
        assert resumed["total"] == 80  # it goes on from the snapshot, counting the steps done before
        done = wait(server, running, lambda j: j["status"] == "done")
        assert done["step"] == 80 and done["error"] is None
        assert wait(server, queued, lambda j: j["status"] == "done")["step"] == 3
        with urllib.request.urlopen(f"{server.url}/api/jobs/{running}/result.png", timeout=30) as answer:
            assert Image.open(io.BytesIO(answer.read())).size == (40, 30)
        manifest = server.get(f"/api/jobs/{running}/manifest.json")
        # the second run started from the snapshot and ran only the steps left
        assert manifest["settings"]["steps"] == 80 - snapshot_step
        assert manifest["settings"]["init"].endswith("snapshot.png")
        with urllib.request.urlopen(f"{server.url}/api/jobs/{finished}/result.png", timeout=30) as answer:
            assert answer.status == 200  # nothing lost
        assert not (data / "jobs" / running / "snapshot.png").exists()


def test_listening_beyond_this_machine_makes_a_token_and_prints_its_url(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import urllib.error

    from .studio_process import free_port

    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "styletransfer", "serve", "--host", "0.0.0.0", "--port", str(port)]
    process = subprocess.Popen(
        [*cmd, "--data-dir", str(tmp_path / "data")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert f"http://127.0.0.1:{port}/?token=" in line, line
        token = line.split("?token=")[1].split()[0]
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5)
                raise AssertionError("answered without the token")
            except urllib.error.HTTPError as exc:
                refused = exc.code
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert refused == 401
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/health", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_a_second_server_on_the_same_folder_exits_2_naming_the_first(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from .studio_process import free_port

    data = tmp_path / "data"
    with serve(data) as first:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "styletransfer", "serve", "--data-dir", str(data), "--port", str(free_port())]
        second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert second.returncode == 2, second.stderr
        err = second.stderr.strip()
        assert len(err.splitlines()) == 1 and f"pid {first.process.pid}" in err and "styletransfer serve" in err
        assert first.get("/api/health") == {"status": "ok"}
    assert (data.stat().st_mode & 0o777) == 0o700
