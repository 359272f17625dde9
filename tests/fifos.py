"""A real FIFO that counts who opened it to read (and lets them go), so a test fails instead of hanging."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import TracebackType


class WatchedFifo:
    """``os.mkfifo(path)``, and a thread that opens the write end whenever a reader waits on it.

    A reader that opens a FIFO blocks until a writer comes: the thread comes
    (within 50 ms), counts the reader in :attr:`readers` and closes at once, so
    the reader sees an empty file and goes on.  A tool that refuses the FIFO
    without opening it leaves :attr:`readers` at 0.
    """

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.readers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody reads; ENOENT: removed
                time.sleep(0.05)
                continue
            self.readers += 1
            os.close(fd)
            time.sleep(0.05)

    def __enter__(self) -> WatchedFifo:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
