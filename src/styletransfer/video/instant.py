"""The instant preset's video frames: one feed-forward pass each, blended with the previous output warped.

With ``T`` the transformer and ``S`` the video's style vector
(:mod:`styletransfer.instant`), frame ``t``'s fresh picture is
``I_t = T(pad4(x_t), S)`` cropped to ``x_t``'s shape, with ``S`` and the
conditional instance norms' ``(gamma(S), beta(S))`` computed once per video
(:class:`InstantStyle`).  ``S`` mixes the styles' vectors with the first
frame's (``strength``), and ``histogram`` colours recolour the styles to the
first frame: one style for the whole clip, so that it does not flicker with
each frame's content.

Temporal consistency (:func:`blend_previous`) is an exponential moving average
along the optical flow: with ``W_t`` the previous output warped into frame
``t`` by the backward flow and ``c`` its certainty mask,
``O_t = c (b W_t + (1 - b) I_t) + (1 - c) I_t = I_t + b c (W_t - I_t)``.
Where the flow is trusted a pixel keeps ``b`` of its past and takes ``1 - b``
of the fresh pass; at disocclusions and motion boundaries (``c = 0``) it is
the fresh pass.  Where ``c = 1``, ``O_t - W_t = (1 - b)(I_t - W_t)``: the
frame-to-frame change falls by ``1 - b``, so the warping error by about
``(1 - b)^2``.

The network's texture is not tied to the scene (its strided convolutions put
the strokes on their own grid), so ``I_t`` and ``W_t`` are two different
brushings of the same picture, and their average is a weaker texture than
either: a middling blend raises the seed's style loss.  A large ``b`` mostly
carries one brushing along the flow instead, which keeps the style, as long
as the warp does not blur it frame after frame; hence the bicubic warp (a
bilinear one blurs a sub-pixel shift like a ``[1/2, 1/2]`` filter, every
frame).  Warping error and style loss for several ``b``: docs/instant.md.
The price of a large ``b`` is lag: a change that the flow does not explain
(light, a wrong but trusted flow) fades in over about ``1 / (1 - b)`` frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..color import match_color
from ..instant.model import mixed_vector, networks, transform
from ..losses import blend_weights
from ..pipeline import Settings


@dataclass
class InstantStyle:
    """A video's style for the feed-forward network: ``S`` and its norm parameters, made once per video.

    Attributes:
        vector: ``S``, ``(1, 100)``, on the device.
        params: ``(gamma(S), beta(S))`` of every conditional instance norm
            (:meth:`~styletransfer.instant.networks.StyleTransformer.norm_params`).
    """

    vector: Tensor
    params: dict[str, tuple[Tensor, Tensor]]
    settings: Settings

    @classmethod
    def of(cls, reference: Tensor, styles: Sequence[Tensor], settings: Settings) -> InstantStyle:
        """``S = a sum_i b_i P(crop(s_i)) + (1 - a) P(crop(reference))``, the styles recoloured to ``reference``
        first under ``histogram`` colours; ``reference`` is the first frame at the working size."""
        p = settings.preset
        styles = list(styles)
        if p.preserve_colors == "histogram":
            styles = [match_color(s, reference).clamp(0.0, 1.0) for s in styles]
        weights = blend_weights(p.style_blend, len(styles))
        vector = mixed_vector(reference, styles, weights, p.strength, settings.device)
        _, transformer = networks(settings.device)
        with torch.inference_mode():
            params = transformer.norm_params(vector.to(settings.device))
        return cls(vector, params, settings)

    def picture(self, content: Tensor) -> Tensor:
        """``I = T(pad4(content), S)`` cropped to ``content``'s shape: ``(1, 3, H, W)`` float32 on the CPU.

        :func:`~styletransfer.instant.model.transform` with the norm parameters made once.
        """
        return transform(content, self.params, self.settings.device, self.settings.precision).cpu()


def blend_previous(fresh: Tensor, warped: Tensor, certainty: Tensor, blend: float) -> Tensor:
    """``O = I + b c (W - I)``: ``fresh`` ``I``, the warped previous output ``W``, its certainty ``c``, ``b = blend``.

    ``certainty`` is ``(1, 1, H, W)`` in [0, 1] (with long-term consistency
    the union of the ``c_long`` masks, ``W`` then taking each pixel from the
    nearest earlier frame that saw it).
    """
    return fresh + blend * certainty * (warped - fresh)
