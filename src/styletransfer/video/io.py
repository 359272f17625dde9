"""Frames in and out: a directory of images or a video file (PyAV), a directory of PNGs or an H.264 MP4.

An MP4 is written into a temporary file beside its path and renamed at the
end (never left half-written); the input's audio stream is copied into it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, MissingExtra, OutputError
from ..fileio import file_sha256

#: What a frame directory contributes (by extension, sorted by name).
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")

#: Outputs written as video files (anything else is a directory of PNG frames).
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm")


def _av() -> Any:
    try:
        import av
    except ModuleNotFoundError:
        raise MissingExtra("video files need PyAV: pip install 'styletransfer[video]'") from None
    return av


@dataclass
class Clip:
    """A clip's frames (``(H, W, 3)`` uint8 RGB), its frame rate, and where it came from."""

    frames: list[np.ndarray]
    fps: Fraction
    source: Path
    is_video: bool

    def fingerprint(self) -> str:
        """The source's identity for resuming: its files' sha256."""
        if self.is_video:
            return file_sha256(self.source)
        import hashlib

        digest = hashlib.sha256()
        for f in frame_files(self.source):
            digest.update(file_sha256(f).encode())
        return digest.hexdigest()


def frame_files(directory: Path) -> list[Path]:
    """The frame images of a directory, sorted by name."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)


def read_clip(path: str | os.PathLike[str], fps: float | None = None) -> Clip:
    """Every frame of a video file or a directory of frames.

    Raises:
        InputError: a missing path, an empty directory, an unreadable file.
    """
    from PIL import Image

    p = Path(path)
    if p.is_dir():
        files = frame_files(p)
        if not files:
            raise InputError(f"{p}: no frames (PNG, JPEG...) in this directory")
        frames = []
        for f in files:
            try:
                with Image.open(f) as im:
                    frames.append(np.array(im.convert("RGB")))
            except OSError as exc:
                raise InputError(f"{f}: not a readable image ({exc})") from None
        if len({fr.shape for fr in frames}) > 1:
            raise InputError(f"{p}: the frames differ in size")
        return Clip(frames, Fraction(fps or 24).limit_denominator(1001), p, False)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    av = _av()
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise InputError(f"{p}: has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or 24
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except av.error.FFmpegError as exc:
        raise InputError(f"{p}: not a readable video ({exc})") from None
    if not frames:
        raise InputError(f"{p}: no frames")
    return Clip(frames, Fraction(fps).limit_denominator(1001) if fps else Fraction(rate), p, True)


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """Whether an output path names a video file (by extension) rather than a frame directory."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def write_video(
    frames: Sequence[str | os.PathLike[str]], path: str | os.PathLike[str], fps: Fraction, audio_from: Path | None
) -> Path:
    """Encode PNG frames as H.264 (yuv420p, sides cut to even) into ``path``, the audio of ``audio_from`` copied.

    Raises:
        OutputError: the file cannot be written.
    """
    from PIL import Image

    av = _av()
    out = Path(path)
    directory = out.parent if str(out.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=out.suffix, dir=directory)
    os.close(fd)
    try:
        with av.open(tmp, mode="w") as container:
            first = np.asarray(Image.open(frames[0]).convert("RGB"))
            h, w = first.shape[0] // 2 * 2, first.shape[1] // 2 * 2
            codec = "libx264" if "libx264" in av.codecs_available else "h264"
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": "18"}
            audio_in = _open_audio(av, audio_from)
            audio_out = None
            if audio_in is not None:
                template = audio_in.streams.audio[0]
                add = getattr(container, "add_stream_from_template", None)
                audio_out = add(template) if add is not None else container.add_stream(template=template)
            for f in frames:
                rgb = np.ascontiguousarray(np.asarray(Image.open(f).convert("RGB"))[:h, :w])
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
            if audio_in is not None and audio_out is not None:
                with audio_in:
                    for packet in audio_in.demux(audio_in.streams.audio[0]):
                        if packet.dts is None:
                            continue
                        packet.stream = audio_out
                        container.mux(packet)
        os.replace(tmp, out)
    except (OSError, av.error.FFmpegError) as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{out}: cannot write the video ({exc})") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def _open_audio(av: Any, source: Path | None) -> Any:
    """The source opened for its audio, or ``None`` when it has none."""
    if source is None or source.is_dir():
        return None
    container = av.open(str(source))
    if not container.streams.audio:
        container.close()
        return None
    return container
