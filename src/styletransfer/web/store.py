"""The job store: one SQLite file (``DATA_DIR/jobs.sqlite3``) and a folder per job (``DATA_DIR/jobs/ID/``).

Standard library only.  Every method takes the store's lock, so the runner
threads and the request handlers can share one connection.  A job's row is
inserted only once its folder is complete (see :meth:`Store.add`): a refused
upload leaves neither a row nor files.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

#: What ``GET /api/jobs/{id}`` calls a job's state.
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    status TEXT NOT NULL,
    device TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    options TEXT NOT NULL,
    job TEXT NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    loss REAL,
    error TEXT,
    snapshot_step INTEGER NOT NULL DEFAULT 0,
    has_result INTEGER NOT NULL DEFAULT 0,
    styles INTEGER NOT NULL DEFAULT 1
)
"""

_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_id() -> str:
    """A random job id: 16 characters from ``[a-z0-9]`` (about 82 bits)."""
    return "".join(secrets.choice(_ID_CHARS) for _ in range(16))


def valid_id(text: str) -> bool:
    """Whether ``text`` has the shape of a job id (so that it may name a folder)."""
    return len(text) == 16 and all(c in _ID_CHARS for c in text)


class Store:
    """The jobs of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self.tmp_dir = self.data_dir / "tmp"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)  # uploads refused or cut off by a crash
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.data_dir / "jobs.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
        self._drop_orphans()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def folder(self, job_id: str) -> Path:
        """The folder of a job (the id is checked first: a request's text never names a path as is)."""
        if not valid_id(job_id):
            raise KeyError(job_id)
        return self.jobs_dir / job_id

    def _drop_orphans(self) -> None:
        """Remove job folders without a row (a crash between the folder's rename and the insert)."""
        with self._lock:
            known = {r[0] for r in self._db.execute("SELECT id FROM jobs")}
        for path in self.jobs_dir.iterdir():
            if path.name not in known:
                shutil.rmtree(path, ignore_errors=True)

    def requeue_running(self) -> list[str]:
        """After a restart: the jobs that were running go back to the queue (they resume from their snapshot)."""
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT id FROM jobs WHERE status = ?", (RUNNING,))]
            self._db.execute("UPDATE jobs SET status = ?, step = snapshot_step WHERE status = ?", (QUEUED, RUNNING))
        return ids

    def add(self, job_id: str, folder: Path, device: str, options: dict[str, Any], job: str, styles: int) -> None:
        """Move a complete, checked job folder into place, then insert its row (queued)."""
        target = self.folder(job_id)
        folder.rename(target)
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO jobs (id, status, device, created, options, job, styles) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (job_id, QUEUED, device, time.time(), json.dumps(options), job, styles),
                )
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else dict(row)

    def all(self) -> list[dict[str, Any]]:
        """Every job, newest first."""
        with self._lock:
            return [dict(r) for r in self._db.execute("SELECT * FROM jobs ORDER BY seq DESC")]

    def page(self, limit: int, before: int | None = None) -> list[dict[str, Any]]:
        """At most ``limit`` jobs, newest first, older than the one numbered ``before`` (its ``seq``) when given."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                (2**63 - 1 if before is None else before, limit),
            )
            return [dict(r) for r in rows]

    def count(self, status: str) -> int:
        """How many jobs have ``status``."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (status,)).fetchone()[0])

    def next_queued(self, device: str) -> dict[str, Any] | None:
        """The oldest queued job for ``device``, claimed (now ``running``), or ``None``.

        The claim counts only if it changed the row: a job another process
        claimed between the look and the claim is skipped, never run twice.
        """
        while True:
            with self._lock:
                row = self._db.execute(
                    "SELECT * FROM jobs WHERE status = ? AND device = ? ORDER BY seq LIMIT 1", (QUEUED, device)
                ).fetchone()
                if row is None:
                    return None
                claimed = self._db.execute(
                    "UPDATE jobs SET status = ?, started = ? WHERE id = ? AND status = ?",
                    (RUNNING, time.time(), row["id"], QUEUED),
                ).rowcount
            if claimed == 1:
                return dict(row) | {"status": RUNNING}

    def devices(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT device FROM jobs WHERE status = ?", (QUEUED,))]

    def cancel_queued(self, job_id: str) -> bool:
        """Cancel a queued job at once; ``False`` when it is not queued (any more)."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET status = ?, finished = ? WHERE id = ? AND status = ?",
                (CANCELLED, time.time(), job_id, QUEUED),
            )
        return cur.rowcount == 1

    def progress(self, job_id: str, step: int, total: int, loss: float | None) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET step = ?, total = ?, loss = ? WHERE id = ?", (step, total, loss, job_id))

    def snapshot(self, job_id: str, step: int) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET snapshot_step = ?, step = ? WHERE id = ?", (step, step, job_id))

    def finish(self, job_id: str, status: str, *, error: str | None, has_result: bool, step: int | None = None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = ?, error = ?, has_result = ?, finished = ?, step = COALESCE(?, step) "
                "WHERE id = ?",
                (status, error, int(has_result), time.time(), step, job_id),
            )

    def delete(self, job_id: str) -> bool:
        """Remove a finished job's row and files; ``False`` when it is not finished."""
        with self._lock:
            marks = ",".join("?" * len(FINISHED))
            cur = self._db.execute(f"DELETE FROM jobs WHERE id = ? AND status IN ({marks})", (job_id, *FINISHED))
        if cur.rowcount != 1:
            return False
        shutil.rmtree(self.folder(job_id), ignore_errors=True)
        return True
