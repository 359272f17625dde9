"""A video's work directory and what the driver writes: the stylised frames, their records, the output, the metrics.

``WORK/settings.json`` holds a hash of what makes the pixels (the source's
and styles' bytes, the run options, the temporal options, the working size);
``WORK/frames/frame_NNNNN.png`` are the stylised frames and
``WORK/metrics/frame_NNNNN.json`` their records.  Every file is written
atomically (:func:`~styletransfer.fileio.save_file_atomically`), so a killed
run continues after the last finished frame.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import save_file_atomically
from .frames import FrameRecord
from .io import Clip, is_video_path, write_video


def default_work_dir(output: str | os.PathLike[str]) -> Path:
    """``OUT.work`` beside the output."""
    out = Path(output)
    return out.with_name(out.name + ".work")


def frame_name(t: int) -> str:
    """Frame ``t``'s file name, counted from 1: ``frame_00001.png`` for ``t = 0``."""
    return f"frame_{t + 1:05d}.png"


def save_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) atomically."""
    save_file_atomically(path, lambda f: f.write(text.encode()))


def prepare_work_dir(work: Path, state: dict[str, Any]) -> None:
    """Create the work directory; frames made with other settings (or another source) are cleared."""
    key = hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()
    marker = work / "settings.json"
    if marker.is_file():
        try:
            same = json.loads(marker.read_text()).get("key") == key
        except json.JSONDecodeError:
            same = False
        if not same:
            shutil.rmtree(work / "frames", ignore_errors=True)
            shutil.rmtree(work / "metrics", ignore_errors=True)
    (work / "frames").mkdir(parents=True, exist_ok=True)
    (work / "metrics").mkdir(exist_ok=True)
    text = json.dumps({"key": key, **state}, indent=1, default=str)
    save_file_atomically(marker, lambda f: f.write(text.encode()))


def write_output(frames: Sequence[Path], out: Path, clip: Clip) -> Path:
    """The finished frames as the output: a video file (the clip's rate and audio) or copies in a directory."""
    if is_video_path(out):
        return write_video(frames, out, clip.fps, clip.source if clip.is_video else None)
    out.mkdir(parents=True, exist_ok=True)
    for f in frames:
        data = f.read_bytes()
        save_file_atomically(out / f.name, lambda fh, data=data: fh.write(data))  # type: ignore[misc]
    return out


def write_metrics(path: Path, records: Sequence[FrameRecord], temporal: bool) -> None:
    """The metrics file: every frame's record, the mean warping error and style loss, the seconds in all."""
    errors = [r.warping_error for r in records if r.warping_error is not None]
    styles = [r.style for r in records if r.style is not None]
    data = {
        "temporal": temporal,
        "frames": [r.__dict__ for r in records],
        "mean_warping_error": float(np.mean(errors)) if errors else None,
        "mean_style_loss": float(np.mean(styles)) if styles else None,
        "seconds": round(sum(r.seconds for r in records), 3),
    }
    text = json.dumps(data, indent=1)
    save_file_atomically(path, lambda f: f.write(text.encode()))
