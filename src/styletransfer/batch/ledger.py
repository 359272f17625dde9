"""The batch's ledger, ``OUT_DIR/batch.jsonl``: one record a line, each item's last one deciding whether it runs.

A record: ``{"item", "content", "styles", "output", "settings", "status",
"output_sha256", "error", "steps", "seconds", "executor", "time"}``.
``settings`` is a hash of what makes the picture (:func:`settings_hash`: the
run options, the weights, the input files' contents, the output's name).  An
item whose last record is ``complete`` with the same settings, and whose
output is still the file recorded, is skipped (:func:`is_done`); any other
item runs (again).  A record is one appended line, flushed to the disk and
started on a line of its own after a torn one (:func:`append_record`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..fileio import file_sha256
from ..job import Job
from ..options import OPTIONS
from .worker import input_paths

#: The ledger's file name inside the output directory.
LEDGER = "batch.jsonl"


@dataclass
class Item:
    """One content image with one style (or the blend of all): its job, its ledger key and settings hash."""

    key: str
    job: Job
    settings: str


def safe_hash(path: str) -> str:
    """The sha256 of a file, or ``unreadable`` (missing, unreadable, not a regular file)."""
    try:
        return file_sha256(path)
    except (OSError, InputError):
        return "unreadable"


def settings_hash(job: Job, output_name: str) -> str:
    """A hash of what makes an item's picture: run options, weights, the inputs' bytes, the output's name."""
    made = {o.name: job.options[o.name] for o in OPTIONS if o.group == "run" or o.name == "weights"}
    data = {
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in made.items()},
        "preset_fields": job.preset_fields,
        "inputs": [safe_hash(p) for p in input_paths(job)],
        "output": output_name,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_ledger(out_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The last record of each item in ``OUT_DIR/batch.jsonl`` (a torn last line, from a kill, is ignored)."""
    path = Path(out_dir) / LEDGER
    last: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return last
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "item" in record:
                last[record["item"]] = record
    return last


def is_done(item: Item, record: dict[str, Any] | None) -> bool:
    """Whether ``record`` says ``item`` is done with its settings and its output is still that file."""
    if record is None or record.get("status") != "complete" or record.get("settings") != item.settings:
        return False
    output = item.job.output
    return output is not None and os.path.isfile(output) and safe_hash(output) == record.get("output_sha256")


def append_record(out_dir: Path, record: dict[str, Any]) -> None:
    """One record as one line, flushed to the disk before the next item is reported.

    The line starts on a line of its own: after a torn last line (a batch
    killed mid-write) a newline comes first, so the torn line stays alone
    (and :func:`read_ledger` skips it) instead of swallowing this record.
    """
    line = (json.dumps(record) + "\n").encode("utf-8")
    with open(out_dir / LEDGER, "ab+") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = b"\n" + line
        f.write(line)  # append mode: at the end, whatever the position
        f.flush()
        os.fsync(f.fileno())
