"""The studio's page in a real browser: Playwright driving Debian's Chromium against a real ``serve`` process.

Playwright's own browser download is not used: the tests launch
``/usr/bin/chromium`` (``apt-get install chromium``) and are skipped without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("playwright.sync_api")

from .studio_process import Server, serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("studio") / "data") as server:
        yield server


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    try:
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        yield page
    finally:
        context.close()


@pytest.fixture
def pictures(tmp_path: Path, tubingen: Path, starry: Path) -> tuple[Path, Path]:
    content, style = tmp_path / "photo.png", tmp_path / "painting.png"
    Image.open(tubingen).convert("RGB").resize((64, 48)).save(content)
    Image.open(starry).convert("RGB").resize((64, 48)).save(style)
    return content, style


def _start(page: Any, pictures: tuple[Path, Path], size: int, steps: int) -> None:
    page.set_input_files("#content-file", str(pictures[0]))
    page.set_input_files("#style-file", str(pictures[1]))
    page.fill("#opt-size", str(size))
    page.click("#more summary")  # steps is one of the raw numbers under "More options"
    page.fill("#opt-steps", str(steps))
    page.wait_for_function("document.getElementById('estimate').textContent.includes('evaluations')", timeout=60_000)
    page.click("#start")


def test_upload_start_watch_the_preview_change_and_see_the_result(page: Any, pictures: tuple[Path, Path]) -> None:
    _start(page, pictures, 48, 60)
    page.wait_for_function("document.getElementById('after').dataset.step > 0", timeout=120_000)
    first = page.get_attribute("#after", "data-step")
    page.wait_for_function(
        f"(s => s && s !== '{first}')(document.getElementById('after').dataset.step)", timeout=120_000
    )
    page.wait_for_selector("#run[data-status='done']", timeout=180_000)
    assert page.get_attribute("#after", "data-step") == "result"
    assert page.is_visible("#download") and page.is_visible("#manifest")
    assert "done" in page.inner_text("#progress-text")
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename.endswith(".png")
    assert page.locator("#history li[data-status='done']").count() >= 1


def test_cancel_a_job_and_keep_its_image(page: Any, pictures: tuple[Path, Path]) -> None:
    _start(page, pictures, 48, 5000)
    page.wait_for_function("document.getElementById('after').dataset.step > 0", timeout=120_000)
    page.click("#cancel")
    page.wait_for_selector("#run[data-status='cancelled']", timeout=60_000)
    assert "cancelled" in page.inner_text("#progress-text")
    assert page.is_visible("#download")  # the image so far is the result


def test_a_bad_option_marks_its_field(page: Any, pictures: tuple[Path, Path]) -> None:
    page.set_input_files("#content-file", str(pictures[0]))
    page.set_input_files("#style-file", str(pictures[1]))
    page.fill("#opt-size", "0")
    page.click("#start")
    page.wait_for_selector("#opt-size[aria-invalid='true']", timeout=30_000)
    assert "size" in page.inner_text("#err-options")


def test_masks_are_uploads_and_a_wrong_count_marks_the_mask_field(page: Any, pictures: tuple[Path, Path]) -> None:
    assert page.locator("#opt-masks, #opt-style_masks, #opt-fine_style, #opt-save_masks").count() == 0
    assert (
        page.get_attribute("#mask-file", "type") == "file" and page.get_attribute("#fine_style-file", "type") == "file"
    )
    page.set_input_files("#content-file", str(pictures[0]))
    page.set_input_files("#style-file", str(pictures[1]))
    page.set_input_files("#mask-file", [str(pictures[0]), str(pictures[1])])  # two masks, one style
    page.click("#start")
    page.wait_for_selector("#mask-file[aria-invalid='true']", timeout=30_000)
    assert "mask" in page.inner_text("#err-options")


def test_the_token_leaves_the_address_bar(browser: Any, tmp_path: Path) -> None:
    token = "a-token-of-24-characters"
    with serve(tmp_path / "data", token=token) as server:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(f"{server.url}/?token={token}")
            page.wait_for_selector("body[data-ready='1']", timeout=30_000)
            assert "token" not in page.url and page.evaluate("window.location.search") == ""
            assert page.locator("#conn").inner_text() == ""  # the cookie carries it: the API still answers
        finally:
            context.close()


def test_the_time_control_sends_its_budget_and_run_again_refills_it(
    page: Any, pictures: tuple[Path, Path], server: Server
) -> None:
    assert page.locator("#opt-time option").all_inner_texts() == ["until done", "30 s", "1 min", "5 min"]
    assert page.input_value("#opt-time") == ""  # until done by default...
    assert "time" not in page.evaluate("formOptions()")  # ...sent as no budget at all
    page.select_option("#opt-time", label="30 s")
    page.set_input_files("#content-file", str(pictures[0]))
    page.set_input_files("#style-file", str(pictures[1]))
    page.fill("#opt-size", "48")
    page.click("#more summary")
    page.fill("#opt-steps", "20")
    page.wait_for_function("document.getElementById('estimate').dataset.budget === '30'", timeout=60_000)
    assert "the time buys" in page.inner_text("#estimate")
    page.click("#start")
    page.wait_for_selector("#history li.current", timeout=30_000)
    job_id = page.get_attribute("#history li.current", "data-id")
    assert server.get(f"/api/jobs/{job_id}")["options"]["time"] == 30
    page.wait_for_selector("#run[data-status='done']", timeout=120_000)
    page.select_option("#opt-time", "")
    page.click("#history li.current button:has-text('Run again')")
    page.wait_for_function("document.getElementById('opt-time').value === '30'", timeout=30_000)
    assert page.evaluate("formOptions()")["time"] == 30
