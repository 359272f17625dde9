"""Colour controls: keep the content's colours instead of the style's.

- :func:`preserve_luminance` (``--preserve-colors luminance``): after
  stylisation, keep the result's luminance Y and put back the content's
  chroma Cb, Cr.  The colour space is YCbCr with ITU-R BT.601 full-range
  coefficients, as in JPEG and Pillow's ``"YCbCr"`` mode.
- :func:`match_color` (``--preserve-colors histogram``): before the style's
  features are taken, give the style image the content's colour mean and
  covariance by an affine map (Gatys et al., "Controlling Perceptual Factors
  in Neural Style Transfer", 2017).
- :func:`luminance_image` and :func:`match_luminance`
  (``--preserve-colors luminance-only``, Gatys et al. 2017's luminance-only
  transfer): content and style become grey images of their luminance Y, the
  style's Y is given the content's mean and standard deviation, the run
  optimises on luminance only, and :func:`preserve_luminance` puts the
  content's chroma back at the end.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: RGB -> YCbCr (BT.601, full range), rows Y, Cb, Cr, for values in [0, 1].
RGB_TO_YCBCR = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [-0.168735892, -0.331264108, 0.5],
        [0.5, -0.418687589, -0.081312411],
    ]
)
#: The offset added to Cb and Cr (128/255 on the [0, 1] scale).
CHROMA_OFFSET = 128.0 / 255.0
COLOR_MODES = ("luminance", "histogram", "luminance-only")


def _offset(image: Tensor) -> Tensor:
    """``(0, 128/255, 128/255)`` shaped to add to a ``(B, 3, H, W)`` YCbCr image."""
    return torch.tensor([0.0, CHROMA_OFFSET, CHROMA_OFFSET]).to(image).view(1, 3, 1, 1)


def rgb_to_ycbcr(image: Tensor) -> Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] to YCbCr, ``Y`` in [0, 1], ``Cb, Cr`` centred on 128/255."""
    m = RGB_TO_YCBCR.to(image)
    out = torch.einsum("ij,bjhw->bihw", m, image)
    return out + _offset(image)


def ycbcr_to_rgb(image: Tensor) -> Tensor:
    """The inverse of :func:`rgb_to_ycbcr` (not clamped)."""
    m = torch.linalg.inv(RGB_TO_YCBCR.double()).to(image)
    centred = image - _offset(image)
    return torch.einsum("ij,bjhw->bihw", m, centred)


def preserve_luminance(result: Tensor, content: Tensor) -> Tensor:
    """The result's luminance with the content's chroma, clamped to [0, 1].

    ``content`` is resized to the result's shape if needed.  Where the mix lies
    outside the RGB cube the clamp changes it (rare: a bright Y with strongly
    saturated chroma).
    """
    if content.shape[-2:] != result.shape[-2:]:
        from .images import resize

        content = resize(content, (result.shape[-2], result.shape[-1]))
    y = rgb_to_ycbcr(result)[:, :1]
    chroma = rgb_to_ycbcr(content)[:, 1:]
    return ycbcr_to_rgb(torch.cat([y, chroma], dim=1)).clamp(0.0, 1.0)


def _sqrtm(cov: Tensor, inverse: bool = False) -> Tensor:
    """The symmetric square root (or inverse square root) of a covariance matrix."""
    values, vectors = torch.linalg.eigh(cov)
    values = values.clamp_min(1e-8)
    power = -0.5 if inverse else 0.5
    root: Tensor = vectors @ torch.diag(values**power) @ vectors.T
    return root


def match_color(style: Tensor, content: Tensor) -> Tensor:
    """``style`` recoloured to the content's colour mean and covariance (not clamped).

    With ``mu``, ``S`` the mean and 3x3 covariance of the RGB pixels,
    ``x' = S_c^{1/2} S_s^{-1/2} (x - mu_s) + mu_c``, so that ``x'`` has mean
    ``mu_c`` and covariance ``S_c`` exactly.  Computed in float64.
    """
    s = style[0].reshape(3, -1).double()
    c = content[0].reshape(3, -1).double()
    mu_s, mu_c = s.mean(1, keepdim=True), c.mean(1, keepdim=True)
    cov_s = torch.cov(s, correction=0) + 1e-8 * torch.eye(3, dtype=torch.float64)
    cov_c = torch.cov(c, correction=0) + 1e-8 * torch.eye(3, dtype=torch.float64)
    a = _sqrtm(cov_c) @ _sqrtm(cov_s, inverse=True)
    out = a @ (s - mu_s) + mu_c
    return out.reshape(style.shape).to(style.dtype)


def luminance_image(image: Tensor) -> Tensor:
    """The luminance Y (BT.601) of a ``(B, 3, H, W)`` RGB image, repeated in three channels for VGG19."""
    y = rgb_to_ycbcr(image)[:, :1]
    return y.expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: Tensor, content: Tensor) -> Tensor:
    """``style``'s luminance image with the content's luminance mean and standard deviation, in [0, 1].

    ``Y' = (Y_s - mu_s) sigma_c / sigma_s + mu_c`` (Gatys et al. 2017), clamped; both inputs are RGB
    (a luminance image is its own luminance).
    """
    ys = rgb_to_ycbcr(style)[:, :1].double()
    yc = rgb_to_ycbcr(content)[:, :1].double()
    sd_s = float(ys.std(unbiased=False))
    matched = (ys - ys.mean()) * (float(yc.std(unbiased=False)) / max(sd_s, 1e-8)) + yc.mean()
    return matched.clamp(0.0, 1.0).to(style.dtype).expand(-1, 3, -1, -1).contiguous()
