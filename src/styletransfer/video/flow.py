"""Optical flow, warping and the certainty mask of Ruder, Dosovitskiy & Brox (2016).

Conventions: images are ``(H, W, 3)`` float32 arrays in [0, 1] (or uint8 for
the flow); a flow ``f`` of shape ``(H, W, 2)`` (x then y, pixels) *from* frame
``a`` *to* frame ``b`` says that ``a[y, x]`` is seen at ``b[y + f_y, x + f_x]``.
The backward flow of frame ``t`` (to ``t - 1``) warps the previous stylised
frame into frame ``t``'s place: ``warped[y, x] = prev[y + b_y, x + b_x]``.

The flow is OpenCV's DIS (dense inverse search): no weights to download.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import numpy as np

from ..errors import MissingExtra


def _cv2() -> Any:
    try:
        import cv2
    except ModuleNotFoundError:
        raise MissingExtra("video needs OpenCV: pip install 'gatys-styletransfer[video]'") from None
    return cv2


def gray(image: np.ndarray) -> np.ndarray:
    """An ``(H, W, 3)`` image (uint8, or float in [0, 1]) as ``(H, W)`` uint8 luma (BT.601)."""
    x = np.asarray(image, dtype=np.float32)
    if image.dtype != np.uint8:
        x = x * 255.0
    y = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    return np.asarray(np.clip(np.rint(y), 0, 255), dtype=np.uint8)


def dis_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The flow from image ``a`` to image ``b`` (``(H, W, 2)`` float32) by DIS, the ``medium`` preset.

    One OpenCV thread: the callers run flows in parallel themselves.
    """
    cv2 = _cv2()
    cv2.setNumThreads(1)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    # DIS(I0, I1) gives f with I0(x) ~ I1(x + f(x)): the flow from a to b.
    flow = dis.calc(gray(a), gray(b), None)
    return np.asarray(flow, dtype=np.float32)


def _grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs + flow[..., 0], ys + flow[..., 1]


def warp(image: np.ndarray, flow: np.ndarray, interpolation: Literal["linear", "cubic"] = "linear") -> np.ndarray:
    """``image`` sampled at ``x + flow(x)`` (the border repeated): ``image`` brought along ``flow``.

    ``interpolation``: ``"linear"`` (bilinear) or ``"cubic"`` (bicubic,
    ``a = -0.75``: sharper, so a picture warped again and again blurs far
    less, but it may overshoot the values' range; the caller clamps).
    """
    cv2 = _cv2()
    map_x, map_y = _grid(flow)
    mode = cv2.INTER_CUBIC if interpolation == "cubic" else cv2.INTER_LINEAR
    out = cv2.remap(np.ascontiguousarray(image, dtype=np.float32), map_x, map_y, mode, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out, dtype=np.float32).reshape(image.shape)


def certainty(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Ruder et al.'s certainty mask of frame ``t``: 1 where the backward flow can be trusted, else 0.

    ``backward``: the flow from frame ``t`` to ``t - 1``; ``forward``: from
    ``t - 1`` to ``t``.  A pixel is 0 when its match leaves the frame, when the
    two flows disagree (a disocclusion):
    ``|b + f(x + b)|^2 > 0.01 (|b|^2 + |f(x + b)|^2) + 0.5``, or at a motion
    boundary: ``|grad b_x|^2 + |grad b_y|^2 > 0.01 |b|^2 + 0.002``.

    Returns:
        ``(H, W)`` float32 of 0 and 1.
    """
    h, w = backward.shape[:2]
    map_x, map_y = _grid(backward)
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    f_at = warp(forward, backward)
    total = backward + f_at
    disagree = (total**2).sum(-1) > 0.01 * ((backward**2).sum(-1) + (f_at**2).sum(-1)) + 0.5
    gy_u, gx_u = np.gradient(backward[..., 0])
    gy_v, gx_v = np.gradient(backward[..., 1])
    boundary = gx_u**2 + gy_u**2 + gx_v**2 + gy_v**2 > 0.01 * (backward**2).sum(-1) + 0.002
    return np.asarray(inside & ~disagree & ~boundary, dtype=np.float32)


def flow_and_mask(previous: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The backward flow of ``current`` (to ``previous``) and its certainty mask, from two DIS flows."""
    backward = dis_flow(current, previous)
    forward = dis_flow(previous, current)
    return backward, certainty(backward, forward)


def warping_error(current: np.ndarray, previous: np.ndarray, backward: np.ndarray, mask: np.ndarray) -> float:
    """``sum(M |O_t - warp(O_{t-1})|^2) / sum(M)`` over the RGB values in [0, 1] (0 when ``M`` is empty)."""
    warped = warp(previous, backward)
    weight = float(mask.sum())
    if weight == 0:
        return 0.0
    return float((mask[..., None] * (current - warped) ** 2).sum() / weight)


def long_term_masks(certainties: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Ruder et al.'s long-term masks from the certainties of frames ``t - 1, t - 2, ...`` (nearest first).

    ``c_long^{t-j,t} = max(c^{t-j,t} - sum_{k<j} c^{t-k,t}, 0)``: a pixel
    counts for frame ``t - j`` only where no closer frame saw it, so each
    pixel is pulled toward the nearest earlier frame where it was visible.
    The first mask is ``c^{t-1,t}`` itself.
    """
    masks: list[np.ndarray] = []
    closer: np.ndarray | float = 0.0
    for c in certainties:
        masks.append(np.maximum(c - closer, 0.0).astype(np.float32))
        closer = closer + c
    return masks


#: The flows of a video: ``(s, t)`` to the backward flow of frame ``t`` to frame ``s < t`` and its certainty mask.
Flows = dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]

#: A flow provider: for each frame pair ``(a, b)`` given, the backward flow of ``b`` (to ``a``) and its certainty mask.
FlowMap = Callable[[Sequence[tuple[np.ndarray, np.ndarray]]], Iterable[tuple[np.ndarray, np.ndarray]]]


def _flow_pair(pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return flow_and_mask(*pair)


def local_flows(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The flows and masks of each pair, here, one after another."""
    return [_flow_pair(p) for p in pairs]
