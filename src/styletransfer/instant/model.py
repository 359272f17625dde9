"""Instant stylisation: the style vectors and one pass of the transformer, on tensors.

With ``P`` the style predictor and ``T`` the transformer
(:mod:`styletransfer.instant.networks`), styles ``s_i`` with normalised blend
weights ``b_i``, the content ``c`` and the strength ``a`` in [0, 1]::

    S = a * sum_i b_i P(crop(s_i)) + (1 - a) * P(crop(c))
    output = T(pad4(c), S)   cropped back to c's shape

``crop`` is the centre square resized to 256x256 (antialiased bilinear);
``pad4`` reflect-pads the bottom and right up to multiples of 4 (at least
:data:`MIN_SIDE`).  The transformer runs at the output's own size: nothing is
upscaled afterwards.  Style vectors are kept per image (a digest of its pixels)
and device, so a batch, a video or the studio computes each style's once.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor

from .networks import StylePredictor, StyleTransformer
from .weights import PREDICT_FILE, TRANSFORM_FILE, ModelError, model_path, read_model

#: The style predictor's input side.
STYLE_SIDE = 256
#: The transformer's smallest input side (after padding): its deepest features are 1/4 of it.
MIN_SIDE = 16
#: Style vectors kept per process (a digest of the image's pixels and the device -> the vector).
_VECTORS_KEPT = 64
_VECTORS: OrderedDict[tuple[str, str], Tensor] = OrderedDict()
_VECTORS_LOCK = threading.Lock()  # the studio's instant thread and its job runners share the cache


def _built(kind: type[StylePredictor] | type[StyleTransformer], file: str) -> StylePredictor | StyleTransformer:
    path = str(model_path(file))
    try:
        return kind(read_model(path))
    except KeyError as exc:
        raise ModelError(f"{path}: not the {kind.__name__}'s model (it has no weights for {exc.args[0]})") from None


@functools.lru_cache(maxsize=4)
def _networks(device: str) -> tuple[StylePredictor, StyleTransformer]:
    predictor = cast(StylePredictor, _built(StylePredictor, PREDICT_FILE)).to(device).eval()
    transformer = cast(StyleTransformer, _built(StyleTransformer, TRANSFORM_FILE)).to(device).eval()
    return predictor, transformer


def networks(device: torch.device | str = "cpu") -> tuple[StylePredictor, StyleTransformer]:
    """The style predictor and the transformer on ``device``, built once per process and device.

    Raises:
        MissingExtra: the ``instant`` extra is not installed.
        ModelError: a model file is missing or unreadable.
    """
    return _networks(str(torch.device(device)))


def style_crop(image: Tensor) -> Tensor:
    """The predictor's input: the centre square of ``image`` ``(1, 3, H, W)``, resized to 256x256 (antialiased)."""
    h, w = image.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[..., top : top + side, left : left + side]
    return F.interpolate(square, size=(STYLE_SIDE, STYLE_SIDE), mode="bilinear", align_corners=False, antialias=True)


def _digest(image: Tensor) -> str:
    return hashlib.sha1(image.detach().cpu().contiguous().float().numpy().tobytes()).hexdigest()


def style_vector(image: Tensor, device: torch.device | str = "cpu") -> Tensor:
    """``P(crop(image))``, the ``(1, 100)`` style vector of ``image`` ``(1, 3, H, W)`` in [0, 1], on ``device``.

    Computed once per image (by a digest of its pixels) and device, for the
    process: the most recent :data:`_VECTORS_KEPT` are kept.
    """
    key = (_digest(image), str(torch.device(device)))
    with _VECTORS_LOCK:
        if key in _VECTORS:
            _VECTORS.move_to_end(key)
            return _VECTORS[key]
    predictor, _ = networks(device)
    with torch.inference_mode():
        vector: Tensor = predictor(style_crop(image.to(device, torch.float32)))
    with _VECTORS_LOCK:
        _VECTORS[key] = vector
        while len(_VECTORS) > _VECTORS_KEPT:
            _VECTORS.popitem(last=False)
    return vector


def mixed_vector(
    content: Tensor,
    styles: Sequence[Tensor],
    weights: Sequence[float],
    strength: float = 1.0,
    device: torch.device | str = "cpu",
) -> Tensor:
    """``S = strength * sum_i weights_i P(styles_i) + (1 - strength) * P(content)`` (``weights`` normalised)."""
    vector = sum((w * style_vector(s, device) for w, s in zip(weights, styles)), torch.zeros(1, 100, device=device))
    if strength < 1.0:
        vector = strength * vector + (1.0 - strength) * style_vector(content, device)
    return vector


def pad4(image: Tensor) -> Tensor:
    """Pad the bottom and right to multiples of 4 (at least :data:`MIN_SIDE`): reflected, or repeated if too thin."""
    h, w = image.shape[-2:]
    ph, pw = max(MIN_SIDE, -(-h // 4) * 4) - h, max(MIN_SIDE, -(-w // 4) * 4) - w
    if not (ph or pw):
        return image
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(image, (0, pw, 0, ph), mode=mode)


def transform(
    content: Tensor,
    style: Tensor | dict[str, tuple[Tensor, Tensor]],
    device: torch.device | str = "cpu",
    precision: str = "fp32",
) -> Tensor:
    """``T(pad4(content), S)`` cropped to ``content``'s shape: ``(N, 3, H, W)`` in [0, 1], on ``device``.

    ``style`` is the style vector ``S`` ``(1, 100)``, or its norm parameters
    (:meth:`~styletransfer.instant.networks.StyleTransformer.norm_params`, on
    ``device``) when many images share it.  ``precision`` ``"bf16"`` runs the
    convolutions under bf16 autocast (CUDA, or a CPU with native bf16);
    ``"tf32"`` needs the CUDA switches set by the caller.  The result is float32.
    """
    dev = torch.device(device)
    _, transformer = networks(dev)
    h, w = content.shape[-2:]
    x = pad4(content.to(dev, torch.float32))
    if dev.type == "cpu":  # oneDNN's convolutions prefer channels-last (docs/instant.md, "Torch, not onnxruntime")
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast(dev.type, torch.bfloat16, enabled=precision == "bf16"):
        out: Tensor = transformer(x, style.to(dev) if isinstance(style, Tensor) else style)
    return out[..., :h, :w].float().contiguous()
