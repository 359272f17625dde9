"""Synthetic clips whose true flow is known: a camera pan over the bundled photo with integer shifts.

Frame ``t`` is the window ``big[dy t : dy t + H, dx t : dx t + W]`` of a textured
image, so pixel ``(y, x)`` of frame ``t`` is pixel ``(y + dy, x + dx)`` of frame
``t - 1``: the backward flow is ``(dx, dy)`` everywhere, and the strip of the
last ``dx`` columns and ``dy`` rows is new (occluded in frame ``t - 1``).

Run it to make the README's clip: ``python tests/clips.py DIR`` writes
``DIR/frames/frame_00001.png ...`` and ``DIR/pan.mp4``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from styletransfer.examples import example_path


def pan_frames(n: int = 6, width: int = 64, height: int = 48, dx: int = 2, dy: int = 1) -> list[np.ndarray]:
    """``n`` frames (``(H, W, 3)`` uint8) of a pan by ``(dx, dy)`` pixels a frame over the Tübingen photo."""
    big_w, big_h = width + dx * (n - 1), height + dy * (n - 1)
    with Image.open(example_path("tubingen.jpg")) as im:
        big = np.asarray(im.convert("RGB").resize((big_w * 2, big_h * 2), Image.BILINEAR))[::2, ::2]
    return [np.ascontiguousarray(big[dy * t : dy * t + height, dx * t : dx * t + width]) for t in range(n)]


def static_frames(n: int = 20, width: int = 48, height: int = 32) -> list[np.ndarray]:
    """``n`` identical frames."""
    return pan_frames(1, width, height, 0, 0) * n


def true_mask(height: int, width: int, dx: int = 2, dy: int = 1) -> np.ndarray:
    """The non-occluded pixels of every frame after the first: all but the new strip."""
    mask = np.zeros((height, width), dtype=bool)
    mask[: height - dy, : width - dx] = True
    return mask


def true_warping_error(frames: list[np.ndarray], dx: int = 2, dy: int = 1) -> float:
    """The mean over frames of ``sum(M |O_t - warp(O_{t-1})|^2) / sum(M)`` with the true flow and mask, RGB in [0, 1]."""
    errors = []
    for prev, cur in zip(frames, frames[1:]):
        h, w = cur.shape[:2]
        a = cur[: h - dy, : w - dx].astype(np.float64) / 255
        b = prev[dy:, dx:].astype(np.float64) / 255
        errors.append(float(((a - b) ** 2).sum(-1).mean()))
    return float(np.mean(errors))


def write_frames(frames: list[np.ndarray], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for t, f in enumerate(frames):
        Image.fromarray(f).save(directory / f"frame_{t + 1:05d}.png")
    return directory


def write_mp4(frames: list[np.ndarray], path: Path, fps: int = 12) -> Path:
    """The frames as an H.264 MP4, with one second of a 440 Hz tone as AAC audio."""
    import av

    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        audio = container.add_stream("aac", rate=44100)
        for f in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)).astype(np.float32)
        for start in range(0, 44100, 1024):
            chunk = tone[None, start : start + 1024]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="flt", layout="mono")
            frame.sample_rate = 44100
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "clip")
    clip = pan_frames(12, 128, 96, 2, 1)
    write_frames(clip, out / "frames")
    write_mp4(clip, out / "pan.mp4")
    print(out / "frames", out / "pan.mp4")
