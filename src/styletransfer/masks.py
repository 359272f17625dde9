"""Masks for spatial control (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer").

- :func:`load_mask`: any image as a ``(1, 1, H, W)`` weight map in [0, 1],
  read as greyscale (white is 1, black 0; an alpha channel darkens it: a
  transparent pixel weighs 0).
- :func:`fit_mask`: a mask resized to the frame it belongs to (the content's,
  or a style image's); a mask of another aspect ratio is refused.
- :func:`propagate`: a mask as each VGG19 layer sees it, with the feature map's
  exact shape: ``simple`` averages each 2x2 pool's area; ``inside`` keeps only
  the neurons whose receptive field lies inside the region (a 3x3 erosion at
  each convolution, the minimum at each pool), so ``inside <= simple``.
- :func:`alpha_masks`, :func:`kmeans_masks`, :func:`face_mask`: masks made
  from the content, offline (OpenCV's Haar cascade ships inside its wheel).
- :func:`save_layer_masks`: what each layer sees, as PNG files.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from .errors import OptionError
from .images import ImageError, ImageLike, open_image
from .vgg_layers import LAYER_INDEX, LAYERS, check_layers

#: A mask's aspect ratio may differ from its frame's by this fraction (or one pixel) and still be resized to it.
ASPECT_TOLERANCE = 0.02

#: A region whose weight at a layer (the sum of its squared mask values, in neurons) is below this has vanished there.
VANISHED = 0.25

#: The automatic masks' spellings.
AUTO_MASKS = ("alpha", "kmeans:K")


def _pil_mask(pil: Image.Image) -> Tensor:
    """A PIL image as a ``(1, 1, H, W)`` weight: its luma (ITU-R 601), times its alpha where it has one."""
    upright = ImageOps.exif_transpose(pil)
    if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
        rgba = np.asarray(upright.convert("RGBA"), dtype=np.float32) / 255.0
        grey = np.asarray(upright.convert("RGBA").convert("RGB").convert("L"), dtype=np.float32) / 255.0
        value = grey * rgba[..., 3]
    elif upright.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(upright, dtype=np.float32)  # 16/32-bit integers by 1/65535, floats as [0, 1] (as images.py)
        value = arr / (1.0 if upright.mode == "F" else 65535.0)
    else:
        value = np.asarray(upright.convert("L"), dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(value)).clamp(0.0, 1.0)[None, None]


def _array_mask(arr: np.ndarray | Tensor) -> Tensor:
    """An ``(H, W)``, ``(H, W, 1|3|4)`` array or a ``(H, W)``, ``([1,] 1|3, H, W)`` tensor as a weight map."""
    if isinstance(arr, Tensor):
        t = arr.detach().float().cpu()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim == 3:
            t = t.permute(1, 2, 0)
        a = t.numpy()
    else:
        a = np.asarray(arr)
        if a.dtype == np.uint8:
            a = a.astype(np.float32) / 255.0
        a = a.astype(np.float32)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        grey = a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
        a = grey * a[..., 3] if a.shape[2] == 4 else grey
    elif a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2 or 0 in a.shape:
        raise ImageError(f"cannot read a mask of shape {tuple(np.asarray(arr).shape)}; give an (H, W) grey image")
    if not np.isfinite(a).all():
        raise ImageError("a mask holds NaN or infinite values")
    return torch.from_numpy(np.ascontiguousarray(a)).clamp(0.0, 1.0)[None, None]


def load_mask(image: ImageLike) -> Tensor:
    """A mask as a ``(1, 1, H, W)`` float32 weight map in [0, 1], at its own size.

    Read as greyscale: white weighs 1, black 0, grey in between; a colour
    image by its luma (ITU-R 601-2, as Pillow's ``"L"``); an alpha channel
    multiplies the weight (a transparent pixel weighs 0).

    Raises:
        ImageError: for a missing or unreadable file (an ``InputError``).
    """
    if isinstance(image, (str, os.PathLike)):
        with open_image(image) as pil:
            return _pil_mask(pil)
    if isinstance(image, Image.Image):
        return _pil_mask(image)
    if isinstance(image, (np.ndarray, Tensor)):
        return _array_mask(image)
    raise TypeError(f"cannot read a mask from {type(image).__name__}")


def describe(image: ImageLike, what: str) -> str:
    """How a message names a mask: its path, or what it is."""
    return str(image) if isinstance(image, (str, os.PathLike)) else what


def check_frame(mask: Tensor, frame: tuple[int, int], name: str, frame_name: str) -> None:
    """Refuse a mask whose aspect ratio is not its frame's (within :data:`ASPECT_TOLERANCE` or one pixel).

    Raises:
        ImageError: naming the mask, both shapes, and what to do.
    """
    h, w = mask.shape[-2], mask.shape[-1]
    fh, fw = frame
    expected_h = w * fh / fw
    if abs(h - expected_h) > max(1.0, ASPECT_TOLERANCE * h):
        raise ImageError(
            f"{name}: the mask is {w}x{h} but {frame_name} is {fw}x{fh}, another aspect ratio; "
            f"draw the mask on {frame_name} (any size with its proportions)"
        )


def fit_mask(mask: Tensor, shape: tuple[int, int]) -> Tensor:
    """``mask`` resized to ``shape`` (bilinear; antialiased when shrinking), in [0, 1]."""
    if tuple(mask.shape[-2:]) == tuple(shape):
        return mask
    shrink = mask.shape[-2] > shape[0] or mask.shape[-1] > shape[1]
    out = F.interpolate(mask, size=shape, mode="bilinear", align_corners=False, antialias=shrink)
    return out.clamp(0.0, 1.0)


def check_count(count: int, n_styles: int, option: str) -> None:
    """One mask per style image.

    Raises:
        OptionError: on ``option`` (``masks``, ``style_masks``), saying how many of each were given.
    """
    if count != n_styles:
        raise OptionError(
            option,
            f"{{option}}: {count} mask{'s' if count != 1 else ''} for {n_styles} style image"
            f"{'s' if n_styles != 1 else ''}; give one mask per style, in the same order",
        )


def _erode(mask: Tensor, kernel: int, stride: int, padding: int) -> Tensor:
    """The minimum over each window (the border counts as inside: ``max_pool2d`` pads with -inf)."""
    return -F.max_pool2d(-mask, kernel, stride, padding)


def propagate(mask: Tensor, layers: Sequence[str], mode: str = "simple") -> dict[str, Tensor]:
    """``mask`` (``(1, 1, H, W)`` at the network's input) as each of ``layers`` sees it.

    Each mask has its layer's feature shape: VGG19's 3x3 convolutions (padding
    1) keep the shape and each 2x2 pool of stride 2 halves it, rounding down.

    Args:
        mode: ``"simple"``: each pool averages the mask over its window (the
            region's share of each neuron's input); ``"inside"``: each
            convolution erodes the mask by its 3x3 window and each pool takes
            the minimum, so that a neuron keeps weight only when its whole
            receptive field lies inside the region.

    Raises:
        OptionError: on ``mask_mode`` for an unknown mode.
    """
    if mode not in ("simple", "inside"):
        raise OptionError("mask_mode", f"{{option}}: unknown mask mode {mode!r}; choose from simple, inside")
    wanted = set(check_layers(layers))
    if not wanted:
        return {}
    last = max(LAYER_INDEX[n] for n in wanted)
    m = mask
    out: dict[str, Tensor] = {}
    for info in LAYERS[: last + 1]:
        if info.kind == "conv":
            if mode == "inside":
                m = _erode(m, 3, 1, 1)
        else:
            m = F.avg_pool2d(m, 2, 2) if mode == "simple" else _erode(m, 2, 2, 0)
        if info.name in wanted:
            out[info.name] = m
    return out


def mask_weight(mask: Tensor) -> float:
    """A region's weight at a layer: ``sum m^2`` (the number of neurons for a binary mask), in float64."""
    return float(mask.double().square().sum())


# --- Automatic masks ----------------------------------------------------------------------------


def parse_auto_masks(spec: str) -> tuple[str, int]:
    """``"alpha"`` -> ``("alpha", 2)``; ``"kmeans:K"`` -> ``("kmeans", K)`` for K from 2 to 16.

    Raises:
        OptionError: on ``auto_masks`` for anything else.
    """
    if spec == "alpha":
        return "alpha", 2
    match = re.fullmatch(r"kmeans:(\d+)", spec)
    if match and 2 <= int(match[1]) <= 16:
        return "kmeans", int(match[1])
    raise OptionError(
        "auto_masks", f"{{option}}: unknown automatic masks {spec!r}; use alpha, or kmeans:K with K from 2 to 16"
    )


def alpha_masks(alpha: np.ndarray | None, n_styles: int) -> list[Tensor]:
    """The subject (opaque) for the first style, the background (transparent) for the second.

    With one style, only the subject is styled and the background keeps the content.

    Raises:
        OptionError: on ``auto_masks`` when the content has no alpha channel or there are more than two styles.
    """
    if alpha is None:
        raise OptionError(
            "auto_masks", "{option} alpha: the content has no alpha channel; give a PNG or WebP with transparency"
        )
    if n_styles > 2:
        raise OptionError(
            "auto_masks",
            f"{{option}} alpha: {n_styles} style images; give one (the subject) or two (subject, background)",
        )
    a = torch.from_numpy(alpha.astype(np.float32) / 255.0)[None, None]
    return [a] if n_styles == 1 else [a, 1.0 - a]


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` sRGB in [0, 1] to CIE Lab (D65 white), in float64."""
    c = np.asarray(rgb, dtype=np.float64)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    d = 6.0 / 29.0
    f = np.where(xyz > d**3, np.cbrt(xyz), xyz / (3 * d * d) + 4.0 / 29.0)
    lab: np.ndarray = np.stack(
        [116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], axis=-1
    )
    return lab


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 30) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding: the ``(k, D)`` centres."""
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d2 = np.min(((points[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        total = d2.sum()
        pick = rng.integers(len(points)) if total <= 0 else rng.choice(len(points), p=d2 / total)
        centres.append(points[pick])
    c = np.array(centres)
    for _ in range(iterations):
        labels = ((points[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
        new = np.array([points[labels == j].mean(0) if np.any(labels == j) else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return c


def kmeans_masks(content: Tensor, k: int, seed: int = 0, side: int = 256) -> list[Tensor]:
    """``k`` binary masks of the content's colour regions (k-means in Lab), largest region first.

    The clustering runs on the content at most ``side`` pixels on its long side
    (the masks are resized to each scale anyway); the seed makes it repeatable.
    """
    h, w = content.shape[-2], content.shape[-1]
    scale = min(1.0, side / max(h, w))
    shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    small = fit_mask(content.float().cpu(), shape) if scale < 1 else content.float().cpu()
    lab = rgb_to_lab(small[0].permute(1, 2, 0).numpy().reshape(-1, 3))
    rng = np.random.default_rng(seed)
    sample = lab if len(lab) <= 4096 else lab[rng.choice(len(lab), 4096, replace=False)]
    centres = _kmeans(sample, k, rng)
    labels = ((lab[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1).reshape(shape)
    order = np.argsort(-np.bincount(labels.ravel(), minlength=k), kind="stable")
    return [torch.from_numpy((labels == j).astype(np.float32))[None, None] for j in order]


def _opencv() -> Any:
    """OpenCV, imported on demand; an :class:`OptionError` naming the extra when it is missing."""
    try:
        cv2 = importlib.import_module("cv2")
    except ImportError:
        raise OptionError(
            "protect_faces", "{option} needs OpenCV: pip install 'gatys-styletransfer[faces]' (opencv-python-headless)"
        ) from None
    if not hasattr(cv2, "CascadeClassifier"):  # OpenCV 5 moved the Haar cascades out of the main wheel
        raise OptionError(
            "protect_faces",
            f"{{option}} needs OpenCV 4's Haar cascades, not in OpenCV {cv2.__version__}: "
            "pip install 'gatys-styletransfer[faces]' ('opencv-python-headless<5')",
        )
    return cv2


def face_mask(content: Tensor, margin: float = 0.2) -> tuple[Tensor, int]:
    """Where OpenCV's frontal-face Haar cascade finds faces in ``content``: 1 there (boxes grown by ``margin``), else 0.

    Returns:
        The ``(1, 1, H, W)`` mask at the content's shape and the number of faces.
    """
    cv2 = _opencv()
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    grey = (content[0].float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    grey = cv2.cvtColor(np.ascontiguousarray(grey), cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    found = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(max(12, min(h, w) // 40),) * 2)
    mask = torch.zeros(1, 1, h, w)
    for x, y, fw, fh in [tuple(int(v) for v in box) for box in found]:
        dx, dy = round(fw * margin), round(fh * margin)
        mask[..., max(0, y - dy) : min(h, y + fh + dy), max(0, x - dx) : min(w, x + fw + dx)] = 1.0
    return mask, len(found)


# --- What each layer sees ----------------------------------------------------------------------


def save_layer_masks(directory: str | os.PathLike[str], masks: Sequence[dict[str, Tensor]], prefix: str) -> list[Path]:
    """Write each region's mask at each layer as an 8-bit grey PNG ``DIR/{prefix}{i}_{layer}.png`` (at the layer's size)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, per_layer in enumerate(masks, start=1):
        for layer, m in per_layer.items():
            arr = (m[0, 0].detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
            path = out / f"{prefix}{i}_{layer}.png"
            Image.fromarray(np.ascontiguousarray(arr), "L").save(path)
            paths.append(path)
    return paths
