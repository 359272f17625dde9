"""The local executor: the items run in this process (one worker) or in N worker processes.

Each worker process loads the network once (on its first item) and gets
``cores / N`` torch threads; the style targets are computed once per style and
size in each worker (:func:`styletransfer.pipeline.build_objective` keeps them).
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from .worker import chunks, cpu_count, default_group, run_payloads, set_threads


class LocalExecutor:
    """Runs payloads (:func:`~styletransfer.batch.worker.run_payloads`) on ``workers`` local processes.

    With one worker the items run in this process, one after another (no
    process start-up).  ``threads`` per worker defaults to the cores divided
    by the workers.  Up to ``group`` items with the same options and styles
    go to a worker together, and those of one shape are optimised in one
    batch (default: :func:`~styletransfer.batch.worker.default_group`).
    """

    name = "local"
    ships_files = False

    def __init__(self, workers: int = 1, threads: int | None = None, group: int | None = None) -> None:
        self.workers = max(1, int(workers))
        self.threads = threads if threads is not None else max(1, cpu_count() // self.workers)
        self.group = default_group() if group is None else max(1, int(group))
        self.stop = threading.Event()
        self._pool: ProcessPoolExecutor | None = None

    def run(self, payloads: Sequence[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield ``(index, outcome)`` for each payload as it finishes (in any order; a group's together)."""
        groups = chunks(payloads, self.group)
        if self.workers == 1:
            before = set_threads(self.threads)
            try:
                for members in groups:
                    if self.stop.is_set():
                        return
                    outcomes = run_payloads([payloads[i] for i in members], self.stop.is_set, self.group)
                    yield from zip(members, outcomes)
                    if any(o["status"] in ("interrupted", "cancelled") for o in outcomes):  # Ctrl-C: stop here
                        return
            finally:
                set_threads(before)
            return
        self._pool = ProcessPoolExecutor(
            max_workers=min(self.workers, max(1, len(payloads))),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=set_threads,
            initargs=(self.threads,),
        )
        try:
            pending: dict[Future[list[dict[str, Any]]], list[int]] = {
                self._pool.submit(run_payloads, [payloads[i] for i in members], None, self.group): members
                for members in groups
            }
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield from zip(pending.pop(future), future.result())
        finally:
            self.close()

    def close(self) -> None:
        """Stop the worker processes (the items still queued are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
