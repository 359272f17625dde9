"""The studio's instant picture: ``POST /api/instant`` in process, and the page in real Chromium (issue "Instant stylisation").

The browser tests drive Debian's ``/usr/bin/chromium`` with Playwright against a
real ``serve`` process, as ``tests/test_web_browser.py`` does.  Set
``STUDIO_SCREENSHOTS=DIR`` to also write the desktop and phone screenshots there.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from styletransfer.examples import example_path
from tests.web_client import png, studio_client

from .studio_process import Server, serve


@pytest.fixture(scope="module")
def images() -> dict[str, bytes]:
    return {
        "content": png(example_path("tubingen.jpg"), (64, 48)),
        "style": png(example_path("starry_night.jpg"), (64, 48)),
    }


@pytest.fixture
def instant_client(tmp_path: Path) -> Iterator[TestClient]:
    yield from studio_client(tmp_path, max_upload_mb=0.5)


def _instant(client: TestClient, images: dict[str, bytes], params: str = "", **options: Any) -> Any:
    files = [
        ("content", ("c.png", images["content"], "image/png")),
        ("style", ("s.png", images["style"], "image/png")),
    ]
    return client.post("/api/instant" + params, files=files, data={"options": json.dumps(options)})


def _tmp_left(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "data" / "tmp").iterdir())


# --- the endpoint -------------------------------------------------------------------------------


def test_an_instant_picture_is_answered_at_once_and_nothing_is_kept(
    instant_client: TestClient, images: dict[str, bytes], tmp_path: Path
) -> None:
    answer = _instant(instant_client, images, size=64, strength=0.8)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["x-image-size"] == "64x48" and float(answer.headers["x-instant-seconds"]) > 0
    assert Image.open(io.BytesIO(answer.content)).size == (64, 48)
    as_png = _instant(instant_client, images, "?format=png", size=32, preserve_colors="histogram")
    assert as_png.status_code == 200 and as_png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(as_png.content)).size == (32, 24)
    assert _tmp_left(tmp_path) == [] and list((tmp_path / "data" / "jobs").iterdir()) == []
    assert instant_client.get("/api/jobs").json()["jobs"] == []  # not a job: nothing in the list


def test_bundled_examples_are_named_not_uploaded(instant_client: TestClient) -> None:
    answer = instant_client.post(
        "/api/instant",
        data={"content_example": "tubingen.jpg", "style_example": "the_scream.jpg", "options": '{"size": 40}'},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-image-size"] == "40x30"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"steps": 10}, "steps"),
        ({"style_weight": 1e6}, "style_weight"),
        ({"time": 5}, "time"),
        ({"preset": "fast"}, "preset"),
        ({"preserve_colors": "luminance-only"}, "preserve_colors"),
        ({"strength": 2}, "strength"),
        ({"size": 100_000}, "size"),
    ],
)
def test_an_option_the_instant_preset_cannot_take_is_422_naming_it(
    instant_client: TestClient, images: dict[str, bytes], tmp_path: Path, options: dict[str, Any], field: str
) -> None:
    answer = _instant(instant_client, images, **options)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field and field in answer.json()["detail"]
    assert _tmp_left(tmp_path) == []


@pytest.mark.parametrize(
    "data",
    [
        {"options": json.dumps({"init": "/etc/hostname"})},
        {"options": json.dumps({"fine_style": "/etc/hostname"})},
        {"options": json.dumps({"weights": "/etc/hostname"})},
        {"content_example": "/etc/hostname"},
        {"content_example": "../../../../etc/hostname"},
    ],
    ids=["init", "fine_style", "weights", "content_example", "relative"],
)
def test_a_server_path_in_the_request_is_refused(
    instant_client: TestClient, images: dict[str, bytes], tmp_path: Path, data: dict[str, str]
) -> None:
    files = [("style", ("s.png", images["style"], "image/png"))]
    if "content_example" not in data:
        files.append(("content", ("c.png", images["content"], "image/png")))
    answer = instant_client.post("/api/instant", files=files, data=data)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/json")  # never the file's bytes
    assert _tmp_left(tmp_path) == []


def test_an_oversized_upload_is_413_and_a_bad_image_422(
    instant_client: TestClient, images: dict[str, bytes], tmp_path: Path
) -> None:
    big = os.urandom(600 * 1024)  # over the client's 0.5 MB
    answer = instant_client.post("/api/instant", files=[("content", ("c.png", big, "image/png"))])
    assert answer.status_code == 413, answer.text
    bad = instant_client.post(
        "/api/instant",
        files=[
            ("content", ("c.png", b"not an image", "image/png")),
            ("style", ("s.png", images["style"], "image/png")),
        ],
    )
    assert bad.status_code == 422 and bad.json()["field"] == "content"
    none = instant_client.post("/api/instant", files=[("content", ("c.png", images["content"], "image/png"))])
    assert none.status_code == 422 and none.json()["field"] == "style"
    assert _tmp_left(tmp_path) == []


def test_the_pixel_limits_apply(tmp_path: Path, images: dict[str, bytes]) -> None:
    for client in studio_client(tmp_path, max_pixels=1000):
        answer = _instant(client, images)
        assert answer.status_code == 422 and answer.json()["field"] == "content"


def test_the_token_guards_it(tmp_path: Path, images: dict[str, bytes]) -> None:
    for client in studio_client(tmp_path, token="a-token-of-24-characters"):
        assert _instant(client, images, size=32).status_code == 401
        client.headers["Authorization"] = "Bearer a-token-of-24-characters"
        assert _instant(client, images, size=32).status_code == 200


def test_the_option_table_names_the_instant_options(instant_client: TestClient) -> None:
    table = instant_client.get("/api/options").json()
    assert {"size", "strength", "style_blend", "preserve_colors"} <= set(table["instant_options"])
    assert "steps" not in table["instant_options"] and "instant" in table["presets"]


def test_an_instant_job_runs_through_the_queue(instant_client: TestClient, images: dict[str, bytes]) -> None:
    files = [
        ("content", ("c.png", images["content"], "image/png")),
        ("style", ("s.png", images["style"], "image/png")),
    ]
    created = instant_client.post(
        "/api/jobs", files=files, data={"options": json.dumps({"preset": "instant", "size": 48})}
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    deadline = time.monotonic() + 120
    while (job := instant_client.get(f"/api/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job["status"] == "done" and job["has_result"] and (job["step"], job["total"]) == (1, 1)
    assert job["loss"] is None
    listed = instant_client.get("/api/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [job_id] and listed[0]["options"]["preset"] == "instant"
    result = instant_client.get(f"/api/jobs/{job_id}/result.png")
    assert Image.open(io.BytesIO(result.content)).size == (48, 36)
    manifest = instant_client.get(f"/api/jobs/{job_id}/manifest.json").json()
    assert not manifest.get("terms")  # a feed-forward network has no loss terms
    refused = instant_client.post(
        "/api/jobs", files=files, data={"options": json.dumps({"preset": "instant", "steps": 5})}
    )
    assert refused.status_code == 422 and refused.json()["field"] == "steps"


# --- the page in Chromium -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("studio") / "data") as server:
        yield server


def _page(browser: Any, server: Server, width: int = 1280, height: int = 900) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    return page


def _contents(tmp_path: Path, count: int, side: int) -> list[Path]:
    """``count`` different content photos (crops of the Tübingen photo), ``side`` px on the long side."""
    source = Image.open(example_path("tubingen.jpg")).convert("RGB")
    found = []
    for i in range(count):
        crop = source.crop((i * 20, i * 10, source.width - i * 20, source.height - i * 10))
        crop.thumbnail((side, side))
        found.append(tmp_path / f"photo{i}.jpg")
        crop.save(found[-1], quality=90)
    return found


def _instant_ms(page: Any) -> int:
    page.wait_for_function("document.body.dataset.instantMs !== undefined", timeout=60_000)
    page.wait_for_selector("#after[data-step='instant']", timeout=60_000)
    return int(page.evaluate("Number(document.body.dataset.instantMs)"))


@pytest.mark.slow
def test_the_instant_picture_appears_then_a_refine_job_runs(browser: Any, server: Server, tmp_path: Path) -> None:
    page = _page(browser, server)
    try:
        assert page.is_visible("#result-s") and page.is_visible("#placeholder")  # the result panel from the start
        assert not page.is_visible("#opt-steps") and not page.is_visible("#opt-style_weight")  # behind "More options"
        content, style = _contents(tmp_path, 1, 96)[0], tmp_path / "style.png"
        Image.open(example_path("starry_night.jpg")).convert("RGB").resize((64, 48)).save(style)
        page.fill("#opt-size", "64")
        page.set_input_files("#content-file", str(content))
        page.set_input_files("#style-file", str(style))
        _instant_ms(page)
        assert "Instant result" in page.inner_text("#instant-status") and page.is_visible("#instant-download")
        assert page.evaluate("document.getElementById('after').naturalWidth") == 64
        page.select_option("#opt-time", "30")
        page.click("#more summary")
        page.fill("#opt-steps", "15")
        page.click("#start")  # "Refine": the fast preset by default
        page.wait_for_selector("#run[data-status='done']", timeout=180_000)
        assert page.get_attribute("#after", "data-step") == "result" and page.is_visible("#download")
        job_id = page.get_attribute("#history li.current", "data-id")
        options = server.get(f"/api/jobs/{job_id}")["options"]
        assert options == {"size": 64, "steps": 15, "time": 30}  # no strength: it is the instant picture's alone
        page.eval_on_selector("#opt-strength", "e => { e.value = '0.5'; e.dispatchEvent(new Event('change')); }")
        page.wait_for_selector("#after[data-step='instant']", timeout=60_000)  # a new choice: the instant picture again
    finally:
        page.context.close()


@pytest.mark.slow
def test_instant_timing_at_512_px(browser: Any, server: Server, tmp_path: Path) -> None:
    """From the second choice to the instant picture on screen, median of 5 on the warm server, at 512 px."""
    page = _page(browser, server)
    try:
        contents = _contents(tmp_path, 6, 512)
        page.fill("#opt-size", "512")
        page.set_input_files("#style-file", str(example_path("starry_night.jpg")))
        page.set_input_files("#content-file", str(contents[0]))  # warms the style vector and the 512 px pass
        _instant_ms(page)
        times: list[int] = []
        server_ms: list[int] = []  # the engine's own time for each (X-Instant-Seconds)
        for content in contents[1:]:
            page.evaluate("delete document.body.dataset.instantMs")
            page.set_input_files("#content-file", str(content))
            times.append(_instant_ms(page))
            server_ms.append(int(page.evaluate("Number(document.body.dataset.instantServerMs)")))
            page.wait_for_timeout(300)
        median = statistics.median(times)
        print(f"\ninstant picture in the browser, 512 px: {times} ms, median {median:.0f} ms")
        print(
            f"the server's pass and encoding (X-Instant-Seconds): {server_ms} ms, median {statistics.median(server_ms)} ms"
        )
        assert median < 2000  # the target is 1 s on an idle machine; the bound leaves room for a busy one
        shots = os.environ.get("STUDIO_SCREENSHOTS")
        if shots:
            page.wait_for_function("document.getElementById('estimate').textContent.includes('evaluations')")
            page.screenshot(path=str(Path(shots) / "studio_desktop.png"))
    finally:
        page.context.close()
    if shots:
        phone = _page(browser, server, 390, 844)
        try:
            phone.set_input_files("#content-file", str(example_path("tubingen.jpg")))
            phone.set_input_files("#style-file", str(example_path("starry_night.jpg")))
            _instant_ms(phone)
            phone.wait_for_function("document.getElementById('estimate').textContent.includes('evaluations')")
            phone.screenshot(path=str(Path(shots) / "studio_phone.png"), full_page=True)
        finally:
            phone.context.close()
