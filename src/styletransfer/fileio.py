"""File helpers shared by every writer: atomic writes and file hashes (torch-free)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .errors import InputError, OutputError, StyleTransferError

#: What a path is when it is not a regular file, by its ``st_mode`` type.
_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def regular_file(path: str | os.PathLike[str], what: str = "a file", error: type[InputError] = InputError) -> Path:
    """``path`` if it is a regular file (a link to one counts), else ``error`` with one line.

    Every input the engine opens goes through this first: opening a FIFO
    would wait forever for a writer, and a device (``/dev/zero``) would be
    read without end.  Only ``stat`` looks at the path; nothing is opened.

    Raises:
        error: ``PATH: no such file``, ``PATH: is a directory, not WHAT``,
            ``PATH: is a FIFO (named pipe), not a regular file; give WHAT``
            (or a device, a socket), ``PATH: cannot read it (REASON)``.
    """
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise error(f"{p}: no such file") from None
    except OSError as exc:
        raise error(f"{p}: cannot read it ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise error(f"{p}: is a directory, not {what}")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a file")
        raise error(f"{p}: is {kind}, not a regular file; give {what}")
    return p


class UnsafeFolder(StyleTransferError, PermissionError):
    """A private folder's name is taken by something this user does not own alone (the message says what)."""


def private_folder(parent: str | os.PathLike[str], name: str) -> Path:
    """``parent/name``: a folder only this user can enter, made with mode 0700 if missing.

    For caches in a shared directory such as ``/tmp``, where the name is
    predictable: a folder there of this user's that others could write in
    (group or world writable) is removed and made again, since anyone may
    have put files in it; a link, a file, or another user's folder under
    that name is refused.

    Raises:
        UnsafeFolder: the name is a link, a file or another user's folder.
    """
    path = Path(parent) / name
    for _ in range(2):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise UnsafeFolder(f"{path}: is a link or a file, not this user's private folder; remove it")
        if info.st_uid != os.getuid():
            raise UnsafeFolder(f"{path}: belongs to another user (uid {info.st_uid}); remove it")
        if not stat.S_IMODE(info.st_mode) & 0o022:
            if stat.S_IMODE(info.st_mode) & 0o077:
                os.chmod(path, 0o700)
            return path
        shutil.rmtree(path)  # writable by others: what is in it cannot be trusted
    raise UnsafeFolder(f"{path}: cannot be made private (mode {stat.S_IMODE(info.st_mode):o})")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, hex (read in 1 MiB chunks).

    Raises:
        InputError: ``path`` is a FIFO, a device or a directory (:func:`regular_file`).
        OSError: it cannot be read (a missing file).
    """
    if os.path.exists(path):
        regular_file(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux's ``/proc``).

    Elsewhere it is read by setting and restoring it, which is only safe while
    no other thread creates files: this runs once, at import.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


#: The umask at import.  Read once: ``os.umask`` can only be read by setting
#: it, which would apply briefly to every thread of the process (a request
#: thread of the studio could create a world-writable file meanwhile).
UMASK: int = _read_umask()


def new_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 less the umask (mkstemp uses 0o600).

    The umask is the one read at import (:data:`UMASK`); the process's umask
    is never changed here.
    """
    return 0o666 & ~UMASK


def save_file_atomically(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Write a file through ``write(f)`` into a temporary file beside ``path``, then rename.

    An existing file at ``path`` is replaced in one step, or not at all: never
    left half-written.  The new file gets the mode ``open()`` would give it.

    Raises:
        OutputError: the directory is missing or cannot be written, or the
            write itself failed (a full disk).
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise OutputError(f"{path}: the directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in {directory} ({exc.strerror})") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write it ({exc.strerror or exc})") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
