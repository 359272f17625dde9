"""The folder lock: a second holder is refused with the first one named; the lock ends with its process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from styletransfer.folder_lock import LOCK_NAME, FolderBusy, FolderLock

HOLD = "import sys, time; from styletransfer.folder_lock import FolderLock; lock = FolderLock(sys.argv[1], 'a test holder').acquire(); print('held', flush=True); time.sleep(60)"


def test_second_process_is_refused_and_named(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusy, match=rf"a test holder \(pid {holder.pid} "):
            FolderLock(tmp_path, "second").acquire()
    finally:
        holder.kill()
        holder.wait()
    # The kernel dropped the killed holder's lock: the folder can be taken now.
    with FolderLock(tmp_path, "third"):
        assert "third" in (tmp_path / LOCK_NAME).read_text()


def test_same_process_twice_is_refused_then_released(tmp_path: Path) -> None:
    first = FolderLock(tmp_path, "first").acquire()
    with pytest.raises(FolderBusy):
        FolderLock(tmp_path, "second").acquire()
    first.release()
    with FolderLock(tmp_path, "second"):
        assert "second" in (tmp_path / LOCK_NAME).read_text()
