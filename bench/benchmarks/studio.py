"""The web studio, measured and photographed: first preview after Start, /api/health latency during a run.

    python -m bench.benchmarks.studio --size 512            # prints the numbers, writes docs/images/studio_*.png

Starts ``styletransfer serve`` on a free port with a fresh data directory,
drives Debian's Chromium with Playwright (``apt-get install chromium``): picks
the bundled Tübingen and Starry Night, sets the size, clicks Start and times
the first preview on the page (from the click to the first preview image
loaded).  Meanwhile a thread asks ``/api/health`` every 100 ms and records
the latencies.  Then it takes a desktop screenshot of the running job,
cancels it, and takes a phone-width screenshot of its result.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.common import ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server (OMP_NUM_THREADS)")
    parser.add_argument("--run-seconds", type=float, default=20.0, help="how long to watch the run after the preview")
    parser.add_argument("--images", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    data = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, "-m", "styletransfer", "serve", "--port", str(port), "--data-dir", str(data)]
    server = subprocess.Popen(cmd, env=env)
    latencies: list[float] = []
    watching = threading.Event()
    done = threading.Event()

    def health() -> None:
        while not done.is_set():
            t = time.perf_counter()
            try:
                urllib.request.urlopen(url + "/api/health", timeout=10).read()
            except OSError:
                time.sleep(0.1)
                continue
            if watching.is_set():
                latencies.append(time.perf_counter() - t)
            time.sleep(0.1)

    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/api/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        threading.Thread(target=health, daemon=True).start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url + "/")
            page.wait_for_selector("body[data-ready='1']")
            page.select_option("#content-example", "tubingen.jpg")
            page.select_option("#style-example", "starry_night.jpg")
            page.fill("#opt-size", str(args.size))
            page.wait_for_function(
                "document.getElementById('estimate').textContent.includes('evaluations')", timeout=300_000
            )
            estimate = page.inner_text("#estimate")
            watching.set()
            page.click("#start")
            page.wait_for_function("document.body.dataset.firstPreviewMs", timeout=600_000)
            first = int(page.evaluate("document.body.dataset.firstPreviewMs")) / 1000
            time.sleep(args.run_seconds)
            watching.clear()
            args.images.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.images / "studio_running.png"), full_page=True)
            page.click("#cancel")
            page.wait_for_selector("#run[data-status='cancelled']", timeout=120_000)
            job = page.evaluate("document.querySelector('#history li').dataset.id")
            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
            phone.goto(url + "/")
            phone.wait_for_selector("body[data-ready='1']")
            phone.click(f"#history li[data-id='{job}'] button:text('Open')")
            phone.wait_for_selector("#run[data-status='cancelled']")
            phone.evaluate("document.getElementById('slider').value = 50")
            phone.dispatch_event("#slider", "input")
            phone.wait_for_timeout(1000)
            phone.screenshot(path=str(args.images / "studio_running_phone.png"), full_page=True)
            progress = page.inner_text("#progress-text")
            browser.close()
    finally:
        done.set()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    ms = sorted(x * 1000 for x in latencies)
    print(f"estimate on the page: {estimate}")
    print(f"size {args.size} px, server threads {args.threads}: first preview {first:.1f} s after clicking Start")
    print(f"job at the end: {progress}")
    print(
        f"/api/health during the run: {len(ms)} requests, median {statistics.median(ms):.1f} ms, "
        f"p95 {ms[int(0.95 * (len(ms) - 1))]:.1f} ms, max {ms[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
