"""The temporal term of Ruder, Dosovitskiy & Brox (2016): its objective, its targets, and where a frame starts.

Frame ``t > 0`` is held to the stylised frames before it, warped into its
place by their backward flows (:mod:`styletransfer.video.flow`): the objective
gains ``temporal_weight / D * sum_j sum(c_j * (x - w_j)^2)`` with ``w_1`` the
stylised frame ``t - 1`` warped, ``c_1`` its certainty mask (0 at
disocclusions and motion boundaries, from the forward-backward check) and
``D`` the number of values of ``x`` (3 H W, in [0, 1]).  With long-term
consistency (``long_term = J >= 2``) the sum also runs over the stylised
frames ``t - 2 .. t - J``, each warped by its own flow, with the masks
``c_long^{t-j,t} = max(c^{t-j,t} - sum_{k<j} c^{t-k,t}, 0)``
(:func:`~styletransfer.video.flow.long_term_masks`): each pixel is pulled
toward the nearest earlier frame where it was visible.  The frame starts from
those warped frames (:func:`starting_image`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from ..images import resize
from ..losses import Objective
from ..pipeline import Settings
from .flow import Flows, long_term_masks, warp

#: The most earlier frames the long-term term reaches back to (``long_term``).
MAX_LONG_TERM = 10


class TemporalObjective(Objective):
    """An objective plus the temporal term: ``weight / x.numel() * sum_j sum(mask_j * (x - target_j)^2)``.

    ``targets``: ``(target_j, mask_j)`` pairs, the previous stylised frame
    warped first (its mask the certainty ``c``), then, for long-term
    consistency, the earlier ones (their masks ``c_long``).  The term is added
    to the ``content`` entry of :meth:`terms` (it is a content-like penalty on
    the pixels), so the optimisers need no change; :attr:`temporal` holds its
    last value.  The base objective is not touched.
    """

    def __init__(self, base: Objective, targets: Sequence[tuple[Tensor, Tensor]], weight: float) -> None:
        self.__dict__.update(base.__dict__)
        self.base = base
        self.targets = list(targets)
        self.temporal_weight = weight
        self.temporal = 0.0

    def terms(self, image: Tensor) -> dict[str, Tensor]:
        t = self.base.terms(image)
        term = temporal_term(image, self.targets, self.temporal_weight)
        self.temporal = float(term.detach())
        return {**t, "content": t["content"] + term}


def temporal_term(image: Tensor, targets: Sequence[tuple[Tensor, Tensor]], weight: float) -> Tensor:
    """``weight / image.numel() * sum_j sum(mask_j * (image - target_j)^2)``."""
    total = sum((mask * (image - target) ** 2).sum() for target, mask in targets)
    return weight * torch.as_tensor(total) / image.numel()


def reach(temporal: bool, long_term: int) -> int:
    """How many earlier stylised frames frame ``t``'s temporal term uses: ``max(1, long_term)``."""
    return max(1, long_term) if temporal else 1


def temporal_targets(
    t: int, stylised: dict[int, Tensor], flows: Flows, span: int, interpolation: Literal["linear", "cubic"] = "linear"
) -> list[tuple[Tensor, Tensor]]:
    """The stylised frames ``t - 1 .. t - span`` warped into frame ``t``, with their masks ``c``, then ``c_long``.

    ``interpolation``: the warp's (:func:`~styletransfer.video.flow.warp`); a
    bicubic warp is clamped to [0, 1].
    """
    earlier = [t - j for j in range(1, span + 1) if t - j >= 0]
    masks = long_term_masks([flows[(s, t)][1] for s in earlier])
    warped = [warp(to_array(stylised[s]), flows[(s, t)][0], interpolation) for s in earlier]
    if interpolation == "cubic":
        warped = [np.clip(w, 0.0, 1.0) for w in warped]
    return [(_to_tensor(w), torch.from_numpy(mask)[None, None]) for w, mask in zip(warped, masks)]


def starting_image(targets: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
    """Where frame ``t`` starts: the previous stylised frame warped, ``w_1``, except where only an earlier frame saw.

    ``x_0 = w_1 + sum_{j>=2} c_long_j (w_j - w_1)``: with long-term consistency,
    a pixel that frame ``t - 1`` did not see starts from the nearest earlier
    frame that did (the ``c_long`` masks do not overlap), as the temporal term
    pulls it there; with short-term consistency alone, ``x_0 = w_1``.
    """
    first = targets[0][0]
    return first + sum((mask * (target - first) for target, mask in targets[1:]), torch.zeros_like(first))


def temporal_wrapper(
    targets: Sequence[tuple[Tensor, Tensor]], weight: float, settings: Settings
) -> Callable[[Objective, Tensor], Objective]:
    """The ``wrap_objective`` of :func:`~styletransfer.pipeline.optimize` that adds the temporal term at each scale.

    At a scale smaller than the targets, they are resized to it, and the masks
    too (kept 0 or 1: resized values above 0.5 become 1).
    """

    def wrap(objective: Objective, content: Tensor) -> Objective:
        shape = (content.shape[-2], content.shape[-1])
        fitted = []
        for target, mask in targets:
            t = target if tuple(target.shape[-2:]) == shape else resize(target, shape)
            m = (
                mask
                if tuple(mask.shape[-2:]) == shape
                else (resize(mask.expand(1, 3, -1, -1), shape)[:, :1] > 0.5).float()
            )
            fitted.append((t.to(settings.device), m.to(settings.device)))
        return TemporalObjective(objective, fitted, weight)

    return wrap


def to_array(image: Tensor) -> np.ndarray:
    """A ``(1, 3, H, W)`` tensor as an ``(H, W, 3)`` float32 array."""
    return np.ascontiguousarray(image[0].permute(1, 2, 0).detach().cpu().numpy(), dtype=np.float32)


def _to_tensor(array: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None].float()
