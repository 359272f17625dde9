"""One process per folder: an advisory ``fcntl.flock`` on a lock file inside it (torch-free).

The studio's data folder and a batch's OUT_DIR are each owned by one process
at a time: a second server would delete the first's temporary folders and
could claim the same job, and a second batch would run every item again.
The lock is held for the life of the process (the kernel drops it when the
process ends, however it ends), and the file names its holder (what the caller
calls it, process id and host) so that the refusal can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from typing import IO

from .errors import InputError

LOCK_NAME = ".styletransfer.lock"


class FolderBusy(InputError):
    """Another live process holds the folder's lock (its message names the holder)."""


class FolderLock:
    """An exclusive lock on ``folder``, taken by :meth:`acquire` and dropped by :meth:`release`.

    Use as a context manager, or keep the object alive for the process's
    life.  Not re-entrant: a second :class:`FolderLock` on the same folder in
    the same process is refused as well (``flock`` locks belong to the open
    file description, not the process).
    """

    def __init__(self, folder: str | os.PathLike[str], what: str) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.what = what
        self._file: IO[str] | None = None

    def acquire(self) -> FolderLock:
        """Take the lock, or raise :class:`FolderBusy` naming the holder."""
        f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open as long as the lock is
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise FolderBusy(
                f"{self.path.parent}: already in use by {holder}; stop it first or use another folder"
            ) from None
        except BaseException:
            f.close()
            raise
        f.seek(0)
        f.truncate()
        f.write(f"{self.what} (pid {os.getpid()} on {socket.gethostname()})\n")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race a process that just opened it)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
