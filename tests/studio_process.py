"""A real ``styletransfer serve`` process for the studio's restart and browser tests; always stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A running studio: its URL, its process and its output file."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path, token: str | None = None) -> None:
        self.process, self.url, self.log, self.token = process, url, log, token

    def get(self, path: str) -> Any:
        headers = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        with urllib.request.urlopen(urllib.request.Request(self.url + path, headers=headers), timeout=30) as answer:
            return json.loads(answer.read())

    def kill(self) -> None:
        """SIGKILL: the server dies with no chance to clean up (a crash)."""
        self.process.kill()
        self.process.wait(30)


@contextmanager
def serve(data_dir: Path, *args: str, port: int | None = None, token: str | None = None) -> Iterator[Server]:
    """Start ``styletransfer serve`` on a free port with one thread, wait for its health, stop it at the end."""
    if token is not None:
        args = (*args, "--token", token)
    port = port or free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    log = data_dir.parent / f"serve-{port}-{time.monotonic_ns()}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "styletransfer", "serve", "--port", str(port), "--data-dir", str(data_dir), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log, token)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited with {process.returncode}: {log.read_text()}")
            try:
                if server.get("/api/health") == {"status": "ok"}:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve did not answer within 60 s: {log.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
