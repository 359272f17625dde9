"""Synthetic clips whose true flow is known: a camera pan and a zoom over the bundled photo.

The pan (:func:`pan_frames`): frame ``t`` is the window
``big[dy t : dy t + H, dx t : dx t + W]`` of a textured image, so pixel
``(y, x)`` of frame ``t`` is pixel ``(y + dy, x + dx)`` of frame ``t - 1``: the
backward flow is ``(dx, dy)`` everywhere, and the strip of the last ``dx``
columns and ``dy`` rows is new (occluded in frame ``t - 1``).

The pan and zoom (:func:`pan_zoom_clip`): every frame samples one continuous
texture ``I`` (the bilinear interpolant of the photo) through a camera
``(s_t, o_t)``: ``frame_t(p) = I(o_t + p / s_t)`` for pixel ``p = (x, y)``.
The texture point seen at ``p`` in frame ``t`` is seen in frame ``t - 1`` at
``p' = s_{t-1} (o_t + p / s_t - o_{t-1})``, exactly; so the backward flow is
``b_t(p) = p' - p`` (for a zoom by ``r = s_t / s_{t-1}`` about the centre
``c``, ``b_t(p) = (1 / r - 1)(p - c)``), and ``p`` is non-occluded exactly
when ``p'`` lies inside frame ``t - 1``.  The zoom pulls back (``r < 1``), so
a ring at the border is new in each zoomed frame.

Run it to make the README's clip: ``python tests/clips.py DIR`` writes
``DIR/frames/frame_00001.png ...`` and ``DIR/pan_zoom.mp4``.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Camera:
    """Frame pixel ``p`` shows the texture at ``origin + p / scale`` (texture pixels; ``scale`` frame px per texel)."""

    scale: float
    x: float
    y: float


@dataclass
class KnownClip:
    """Frames (``(H, W, 3)`` uint8) with, for each frame ``t >= 1``, its true backward flow and non-occluded mask.

    ``flows[t - 1]``: ``(H, W, 2)`` float32, x then y (frame ``t`` to ``t - 1``);
    ``masks[t - 1]``: ``(H, W)`` bool.
    """

    frames: list[np.ndarray]
    flows: list[np.ndarray]
    masks: list[np.ndarray]


def _bilinear(texture: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``texture`` (``(h, w, 3)`` float64) at real coordinates inside it, bilinearly interpolated."""
    h, w = texture.shape[:2]
    x0 = np.clip(np.floor(xs).astype(int), 0, w - 2)
    y0 = np.clip(np.floor(ys).astype(int), 0, h - 2)
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]
    top = texture[y0, x0] * (1 - fx) + texture[y0, x0 + 1] * fx
    bottom = texture[y0 + 1, x0] * (1 - fx) + texture[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _pixels(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    return xs, ys


def true_flow(previous: Camera, current: Camera, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The backward flow ``p' - p`` of ``current``'s pixels into ``previous``'s frame, and where ``p'`` is inside it."""
    xs, ys = _pixels(height, width)
    px = previous.scale * (current.x + xs / current.scale - previous.x)
    py = previous.scale * (current.y + ys / current.scale - previous.y)
    flow = np.stack([px - xs, py - ys], -1).astype(np.float32)
    inside = (px >= 0) & (px <= width - 1) & (py >= 0) & (py <= height - 1)
    return flow, inside


def pan_zoom_clip(
    pan: int = 3, zoom: int = 3, width: int = 64, height: int = 48, dx: int = 2, dy: int = 1, ratio: float = 0.94
) -> KnownClip:
    """``pan`` frames of a pan by ``(dx, dy)`` pixels a frame, then ``zoom`` frames pulling back by ``ratio`` a frame.

    The zoom is about the frame's centre ``c``: its backward flow is
    ``(1 / ratio - 1)(p - c)``.  The texture is the Tübingen photo (smoothed by
    a 2x downsampling), sized to hold every frame's view.
    """
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    cameras = [Camera(1.0, float(dx * t), float(dy * t)) for t in range(pan)]
    last = cameras[-1] if cameras else Camera(1.0, 0.0, 0.0)
    seen = np.array([last.x, last.y]) + centre
    for k in range(1, zoom + 1):
        s = ratio**k
        o = seen - centre / s
        cameras.append(Camera(s, float(o[0]), float(o[1])))
    left = min(c.x for c in cameras)
    top = min(c.y for c in cameras)
    cameras = [Camera(c.scale, c.x - left + 1, c.y - top + 1) for c in cameras]
    tex_w = int(np.ceil(max(c.x + (width - 1) / c.scale for c in cameras))) + 3
    tex_h = int(np.ceil(max(c.y + (height - 1) / c.scale for c in cameras))) + 3
    with Image.open(example_path("tubingen.jpg")) as im:
        big = np.asarray(im.convert("RGB").resize((tex_w * 2, tex_h * 2), Image.BILINEAR))[::2, ::2]
    texture = big.astype(np.float64)
    xs, ys = _pixels(height, width)
    frames = [
        np.asarray(np.clip(np.rint(_bilinear(texture, c.x + xs / c.scale, c.y + ys / c.scale)), 0, 255), np.uint8)
        for c in cameras
    ]
    known = [true_flow(a, b, height, width) for a, b in itertools.pairwise(cameras)]
    return KnownClip(frames, [f for f, _ in known], [m for _, m in known])


def known_warping_error(frames: list[np.ndarray], clip: KnownClip) -> float:
    """The mean over frames of ``sum(M |O_t - warp(O_{t-1})|^2) / sum(M)`` with the clip's true flows and masks.

    ``frames``: the stylised frames (uint8), RGB taken in [0, 1]; the warp is bilinear.
    """
    from styletransfer.video.flow import warping_error

    errors = [
        warping_error(cur.astype(np.float32) / 255, prev.astype(np.float32) / 255, flow, mask.astype(np.float32))
        for prev, cur, flow, mask in zip(frames, frames[1:], clip.flows, clip.masks)
    ]
    return float(np.mean(errors))


def occlusion_frames(
    n: int = 6, width: int = 48, height: int = 32, block: int = 8, speed: int = 4
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A still background with a ``block``-wide bar sliding right by ``speed`` pixels a frame over it.

    Returns the frames and, for each, the *revealed* columns: background that
    the bar covered in frame ``t - 1`` and uncovers in frame ``t``, last seen
    in frame ``t - ceil(block / speed) - 1`` (the background does not move,
    so there it is the same pixels).
    """
    background = pan_frames(1, width, height, 0, 0)[0]
    with Image.open(example_path("starry_night.jpg")) as im:
        bar = np.asarray(im.convert("RGB").resize((block, height), Image.BILINEAR))
    frames, revealed = [], []
    for t in range(n):
        f = background.copy()
        left = speed * t
        f[:, left : left + block] = bar[:, : max(0, min(block, width - left))]
        frames.append(f)
        mask = np.zeros((height, width), dtype=bool)
        if t > 0:
            mask[:, speed * (t - 1) : min(left, width)] = True
        revealed.append(mask)
    return frames, revealed


def read_frames(directory: Path) -> list[np.ndarray]:
    """The PNG frames of ``directory``, in name order, as RGB arrays."""
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(directory.glob("*.png"))]


def small_style(directory: Path, width: int, height: int) -> Path:
    """The Starry Night resized to ``width`` x ``height``, as ``directory/starry.png``."""
    path = directory / "starry.png"
    with Image.open(example_path("starry_night.jpg")) as im:
        im.resize((width, height), Image.BILINEAR).save(path)
    return path


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
    clip = pan_zoom_clip(6, 6, 128, 96, 2, 1).frames
    write_frames(clip, out / "frames")
    write_mp4(clip, out / "pan_zoom.mp4")
    print(out / "frames", out / "pan_zoom.mp4")
