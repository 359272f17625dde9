"""Frames in and out: a directory of images or a video file (PyAV), a directory of PNGs or an H.264 MP4.

A clip is read from its headers first (:func:`read_clip`: frame size, count
and rate checked against :data:`MAX_FRAMES`, :data:`MAX_FPS` and the images'
:data:`~styletransfer.images.MAX_PIXELS`), then its frames are decoded one at
a time (:meth:`Clip.frames`); a frame directory's images go through
:func:`~styletransfer.images.read_image` like every other input.

An MP4 is written into a temporary file beside its path and renamed at the
end (never left half-written); the input's audio stream is copied into it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch import Tensor

from ..errors import InputError, MissingExtra, OptionError, OutputError
from ..fileio import file_sha256, regular_file
from ..front_options import DEFAULT_FPS
from ..images import MAX_PIXELS, exception_line, image_size, read_image, to_tensor

#: What a frame directory contributes (by extension, sorted by name).
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")

#: Outputs written as video files (anything else is a directory of PNG frames).
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm")


def _av() -> Any:
    try:
        import av
    except ModuleNotFoundError:
        raise MissingExtra("video files need PyAV: pip install 'gatys-styletransfer[video]'") from None
    return av


#: The most frames a clip may have (69 minutes at 24 frames a second); the stream's header is checked first.
MAX_FRAMES = 100_000

#: The highest frame rate taken, from a stream or ``fps``.
MAX_FPS = 1000


@dataclass
class Clip:
    """A clip as its headers describe it; :meth:`frames` decodes the frames one at a time.

    Attributes:
        width, height: every frame's size (checked against :data:`~styletransfer.images.MAX_PIXELS`).
        count: the frames (a video whose container does not say is counted once, by demuxing).
        fps: the frame rate.
        source: the video file or the directory of frames.
        is_video: a video file (else a directory of images).
        files: the directory's frame images, in order (empty for a video file).
    """

    width: int
    height: int
    count: int
    fps: Fraction
    source: Path
    is_video: bool
    files: list[Path] = field(default_factory=list)

    def frames(self) -> Iterator[Tensor]:
        """Each frame as a ``(1, 3, H, W)`` tensor in [0, 1], decoded when asked for (never all at once).

        Raises:
            InputError: a frame that cannot be read, or whose size is not the clip's.
        """
        if not self.is_video:
            for f in self.files:
                frame = read_image(f)  # the checks every input image gets
                self._check_frame(frame, f)
                yield frame
            return
        av = _av()
        n = 0
        try:
            with av.open(str(self.source)) as container:
                for decoded in container.decode(container.streams.video[0]):
                    n += 1
                    if n > self.count:
                        raise InputError(f"{self.source}: more frames than its header says ({self.count})")
                    frame = to_tensor(decoded.to_ndarray(format="rgb24"))
                    self._check_frame(frame, self.source, n)
                    yield frame
        except av.error.FFmpegError as exc:
            raise InputError(f"{self.source}: not a readable video ({exception_line(exc)})") from None

    def _check_frame(self, frame: Tensor, path: Path, n: int | None = None) -> None:
        h, w = frame.shape[2], frame.shape[3]
        if (w, h) != (self.width, self.height):
            which = f"{path}" if n is None else f"{path}: frame {n}"
            raise InputError(f"{which} is {w}x{h}, but the clip's frames are {self.width}x{self.height}")

    def fingerprint(self) -> str:
        """The source's identity for resuming: its files' sha256."""
        if self.is_video:
            return file_sha256(self.source)
        import hashlib

        digest = hashlib.sha256()
        for f in self.files:
            digest.update(file_sha256(f).encode())
        return digest.hexdigest()


def frame_files(directory: Path) -> list[Path]:
    """The frame images of a directory, sorted by name (regular files only: a FIFO there is not a frame)."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)


def _check_fps(fps: float | Fraction, where: str | None) -> Fraction:
    """``fps`` as a fraction, if above 0 and at most :data:`MAX_FPS`; ``where`` names the stream (``None``: the option)."""
    if not 0 < float(fps) <= MAX_FPS:  # (NaN fails too)
        if where is None:
            raise OptionError("fps", f"{{option}} must be above 0 and at most {MAX_FPS}, not {float(fps):g}")
        raise InputError(
            f"{where}: its frame rate, {float(fps):g} frames a second, is not above 0 and at most {MAX_FPS}; "
            "give the rate with fps"
        )
    return Fraction(fps).limit_denominator(1001)


def _check_shape(width: int, height: int, count: int, where: str) -> None:
    """Refuse absurd frame sizes and counts (from the headers, before any frame is decoded)."""
    if width < 1 or height < 1:
        raise InputError(f"{where}: not a readable video: its header says {width}x{height} pixels a frame")
    if width * height > MAX_PIXELS:
        raise InputError(
            f"{where}: refused, its {width}x{height} frames have more than the {MAX_PIXELS} pixels this tool decodes"
        )
    if count > MAX_FRAMES:
        raise InputError(f"{where}: refused, {count} frames is more than the {MAX_FRAMES} a clip may have; cut it")


def read_clip(path: str | os.PathLike[str], fps: float | None = None) -> Clip:
    """A video file or a directory of frames, from its headers: frame size, count and rate, all checked.

    No frame is decoded here (:meth:`Clip.frames` decodes them one at a time).

    Raises:
        InputError: a missing path, an empty directory, an unreadable file, frames of
            different sizes, more than :data:`MAX_FRAMES` frames, frames over
            :data:`~styletransfer.images.MAX_PIXELS`, a rate above :data:`MAX_FPS`.
    """
    p = Path(path)
    rate = None if fps is None else _check_fps(fps, None)
    if p.is_dir():
        files = frame_files(p)
        if not files:
            raise InputError(f"{p}: no frames (PNG, JPEG...) in this directory")
        sizes = {f: image_size(f) for f in files}  # headers only, with the checks of every image
        width, height = sizes[files[0]]
        odd = next((f for f in files if sizes[f] != (width, height)), None)
        if odd is not None:
            w, h = sizes[odd]
            raise InputError(
                f"{p}: the frames differ in size ({files[0].name} is {width}x{height}, {odd.name} {w}x{h})"
            )
        _check_shape(width, height, len(files), str(p))
        return Clip(width, height, len(files), rate or Fraction(DEFAULT_FPS), p, False, files)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    regular_file(p, "a video file or a directory of frames")
    av = _av()
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise InputError(f"{p}: has no video stream")
            stream = container.streams.video[0]
            width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
            count = int(stream.frames or 0)
            _check_shape(width, height, count, str(p))
            found = stream.average_rate or stream.guessed_rate
            if rate is None:
                rate = _check_fps(found, str(p)) if found else Fraction(DEFAULT_FPS)
            if count == 0:  # the container does not say: count the packets (no decoding)
                count = sum(1 for packet in container.demux(stream) if packet.size)
                _check_shape(width, height, count, str(p))
    except av.error.FFmpegError as exc:
        raise InputError(f"{p}: not a readable video ({exception_line(exc)})") from None
    if count == 0:
        raise InputError(f"{p}: no frames")
    return Clip(width, height, count, rate, p, True)


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


def png_bytes(picture: Image.Image) -> bytes:
    """``picture`` encoded as PNG, as :func:`~styletransfer.images.save_image` writes it."""
    buffer = BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
