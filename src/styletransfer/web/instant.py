"""The studio's instant pictures: the ``instant`` preset run at once, beside the job queue, on one thread.

``POST /api/instant`` does not queue: a running optimisation job would hold it
for minutes.  Its passes run one at a time on the one thread of
:class:`InstantRunner` (in the server's one process), where the instant
networks and the style vectors (:mod:`styletransfer.instant.model`, cached by
a digest of the style's pixels) are loaded once and reused by every later
request.  At most :data:`MAX_WAITING` requests wait for that thread; more are
429 at once.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..examples import example_path
from ..job import Job, make_job
from ..runner import run_job
from .checks import WebError

#: Instant requests waiting for, or being run on, the instant thread at most; more are 429.
MAX_WAITING = 4

#: The formats ``POST /api/instant`` answers in (``?format=``): media type and PIL format.
FORMATS = {"jpeg": ("image/jpeg", "JPEG"), "png": ("image/png", "PNG")}


@dataclass
class Picture:
    """One instant picture, encoded: its bytes, media type, size and the engine's seconds for it."""

    data: bytes
    media_type: str
    width: int
    height: int
    seconds: float


def encode(image: Any, fmt: str) -> tuple[bytes, str]:
    """A PIL image as ``fmt`` (a key of :data:`FORMATS`) bytes, and the media type."""
    media_type, pil_format = FORMATS[fmt]
    buf = io.BytesIO()
    if pil_format == "JPEG":
        image.convert("RGB").save(buf, "JPEG", quality=92)
    else:
        image.save(buf, "PNG", compress_level=1)  # fast: the picture goes over a local connection
    return buf.getvalue(), media_type


def run_instant(job: Job, fmt: str) -> Picture:
    """Run an ``instant`` job (no output file) and encode its picture; the caller is on the instant thread."""
    begun = time.perf_counter()
    result = run_job(job)
    if result.image is None:  # an instant run is never stopped: this is a bug
        raise WebError(500, "the instant run ended without a picture")
    image = result.image
    seconds = time.perf_counter() - begun
    data, media_type = encode(image, fmt)
    return Picture(data, media_type, image.width, image.height, seconds)


class InstantRunner:
    """One thread for the instant passes (the networks and style vectors stay loaded), and a bound on the waiting."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="instant")
        self._lock = threading.Lock()
        self._waiting = 0

    def warm(self) -> None:
        """Load the networks and take the bundled style's vector in the background, so the first request is fast.

        A server without the ``instant`` extra still starts (its requests
        answer 503 then).
        """
        self._executor.submit(self._warm)

    @staticmethod
    def _warm() -> None:
        try:
            job = make_job(
                example_path("tubingen.jpg"), example_path("starry_night.jpg"), None, preset="instant", size=64
            )
            run_job(job)
        except Exception:  # the instant extra or its model files are missing: told to each request then
            traceback.print_exc()

    def admit(self) -> None:
        """Count a request in; 429 when :data:`MAX_WAITING` are already waiting or running."""
        with self._lock:
            if self._waiting >= MAX_WAITING:
                raise WebError(429, f"{self._waiting} instant pictures are being made; ask again in a moment")
            self._waiting += 1

    def release(self) -> None:
        """Count a request out (after :meth:`admit`, however it ended)."""
        with self._lock:
            self._waiting -= 1

    async def run(self, job: Job, fmt: str) -> Picture:
        """Run ``job`` on the instant thread and wait for its picture (without holding the event loop)."""
        return await asyncio.wrap_future(self._executor.submit(run_instant, job, fmt))

    def stop(self) -> None:
        """Let the running pass end; drop the waiting ones."""
        self._executor.shutdown(wait=True, cancel_futures=True)


__all__ = ["FORMATS", "MAX_WAITING", "InstantRunner", "Picture", "encode", "run_instant"]
