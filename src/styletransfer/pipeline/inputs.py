"""A run's inputs, decoded once (:func:`decode_inputs`), and the checks before any work.

Each image is decoded once, smaller when the file is four or more times the
size the run uses; masks are fitted to their frames.  The checks refuse a
shape the layers cannot take and a run that will not fit in memory, from the
files' headers before decoding (:func:`check_before_decoding`) and from the
decoded pixels after (:func:`check_inputs`).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import Tensor

from ..errors import Notice, OptionError
from ..images import ImageLike, image_size, read_alpha, resize, scaled_shape, to_tensor
from ..losses import blend_weights
from ..masks import (
    alpha_masks,
    check_count,
    check_frame,
    describe,
    face_mask,
    fit_mask,
    kmeans_masks,
    load_mask,
    parse_auto_masks,
)
from ..memory import check_decoding, check_memory
from ..options import INIT_CHOICES, MAX_SIZE
from ..presets import TUTORIAL, Preset
from ..vgg_layers import min_input_side
from .settings import Settings, stage_sizes


def _describe(image: ImageLike, role: str) -> str:
    """How an error message names an input: its path, or its role."""
    return str(image) if isinstance(image, (str, os.PathLike)) else f"the {role} image"


def _smallest_size(height: int, width: int, least: int) -> int:
    """The smallest ``size`` at which both sides of :func:`scaled_shape` reach ``least``."""
    size = math.ceil(least * max(height, width) / min(height, width))
    while size <= MAX_SIZE and min(scaled_shape(height, width, size)) < least:
        size += 1
    return size


def check_shape(image: ImageLike, t: Tensor, size: int, layers: Sequence[str], role: str, option: str = "size") -> None:
    """Refuse an image that, loaded at long side ``size``, is too thin for ``layers``.

    VGG19's pools need :func:`~styletransfer.vgg_layers.min_input_side`
    pixels on *each* side; a long thin image scaled to ``size`` on its long
    side can fall short on the other.

    Args:
        image: the input as given (for the message), ``t`` its decoded tensor.
        option: the option that sets ``size`` (``size`` or ``style_scale``).

    Raises:
        OptionError: on ``option``, naming the image, its shape and the size that would work.
    """
    h, w = t.shape[2], t.shape[3]
    shape = scaled_shape(h, w, size)
    least = min_input_side(layers)
    if min(shape) < least:
        needed = _smallest_size(h, w, least)
        advice = (
            f"use {{option}} {needed} or more, or crop it"
            if needed <= MAX_SIZE
            else "crop it to a less extreme aspect ratio"
        )
        if isinstance(image, (str, os.PathLike)):  # its own size, though it may have been decoded smaller
            w, h = image_size(image)
        raise OptionError(
            option,
            f"{_describe(image, role)}: at {{option}} {size} this {w}x{h} image becomes {shape[1]}x{shape[0]} "
            f"pixels, but VGG19's layers in use need at least {least} on each side; {advice}",
        )


def load_checked(
    image: ImageLike, size: int, layers: Sequence[str], role: str, decoded: Tensor | None = None
) -> Tensor:
    """The seed's ``load_img`` at ``size``, refusing a shape ``layers`` cannot take (see :func:`check_shape`).

    ``decoded`` is ``image`` already decoded (:func:`~styletransfer.images.to_tensor`), to decode it once.
    """
    t = to_tensor(image) if decoded is None else decoded
    check_shape(image, t, size, layers, role)
    return resize(t, scaled_shape(t.shape[2], t.shape[3], size))


@dataclass
class Inputs:
    """A run's inputs, decoded once.

    Attributes:
        content, styles: the sources as given (paths or in-memory images), for messages and manifests.
        content_pixels: the content as a ``(1, 3, H, W)`` tensor in [0, 1], full size.
        alpha: the content's alpha channel, or ``None``.
        style_pixels: each style image, full size.
        init: ``"content"``, ``"noise"``, ``"style"``, or the decoded starting image.
        masks: the regions in the content's frame, ``(1, 1, h, w)`` each at its own size: one per style,
            or one for the blended style (protected faces alone), or ``None``.
        style_masks: per style, ``None`` or its region in the style's frame; ``None`` for none at all.
        fine_style: the decoded ``fine_style`` image; ``None`` in the inputs :func:`mix_scales` makes from it.
    """

    content: ImageLike
    styles: list[ImageLike]
    content_pixels: Tensor
    alpha: np.ndarray | None
    style_pixels: list[Tensor]
    init: str | Tensor
    masks: list[Tensor] | None = None
    style_masks: list[Tensor | None] | None = None
    fine_style: Tensor | None = None


def styles_list(style: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    """One style or several: a list or tuple of images is several styles."""
    if isinstance(style, (list, tuple)):
        return list(style)
    return [cast(ImageLike, style)]


def shape_at(image: Tensor, size: int) -> tuple[int, int]:
    """:func:`~styletransfer.images.scaled_shape` of a ``(1, 3, H, W)`` tensor at long side ``size``."""
    return scaled_shape(image.shape[2], image.shape[3], size)


class FacesProtected(Notice):
    """How many faces ``protect_faces`` found (their content is kept)."""


def decode_inputs(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    init: str | ImageLike = "content",
    *,
    masks: Sequence[ImageLike] | None = None,
    style_masks: Sequence[ImageLike] | None = None,
    auto_masks: str | None = None,
    protect_faces: bool = False,
    fine_style: ImageLike | None = None,
    preset: Preset | None = None,
) -> Inputs:
    """Decode the content (with its alpha), every style, a starting image and the masks, each once.

    ``preset``: the run's, when known; image files four or more times larger
    than the run uses them (the content and a starting image at ``size``, the
    styles at ``style_scale * size``) are then decoded smaller
    (:func:`~styletransfer.images.reduce_factor`).  Masks are decoded whole.

    ``masks`` (one per style, in the content's frame) or ``auto_masks``
    (``"alpha"`` or ``"kmeans:K"``, see :mod:`styletransfer.masks`) give the
    regions; ``protect_faces`` takes the faces OpenCV finds out of every region.

    Raises:
        ImageError: for an input that is not a readable image (a mask included), or a mask of
            another aspect ratio than its frame.
        OptionError: for a mask count that does not match the styles, or impossible automatic masks.
    """
    styles = styles_list(style)
    if not styles:
        raise OptionError("style_blend", "at least one style image is needed")
    size, style_side = needed_sides(preset)
    pixels = to_tensor(content, size)
    alpha = read_alpha(content)
    style_pixels = [to_tensor(s, style_side) for s in styles]
    start: str | Tensor = init if isinstance(init, str) and init in INIT_CHOICES else to_tensor(init, size)
    inputs = Inputs(content, styles, pixels, alpha, style_pixels, start)
    inputs.fine_style = None if fine_style is None else to_tensor(fine_style, style_side)
    _decode_masks(inputs, masks, style_masks, auto_masks, protect_faces)
    return inputs


def needed_sides(preset: Preset | None) -> tuple[int | None, int | None]:
    """The long sides a run decodes its images for: the content's (``size``) and the styles' (``style_scale * size``).

    An image four or more times larger than its side is decoded smaller
    (:func:`~styletransfer.images.reduce_factor`).  ``None`` for the seed's
    own preset (``tutorial``, at any size): it decodes every image whole, as
    the seed does, so that its pixels stay the seed's.
    """
    if preset is None or preset.name == TUTORIAL.name:
        return None, None
    return preset.size, max(1, round(preset.style_scale * preset.size))


def _decode_masks(
    inputs: Inputs,
    masks: Sequence[ImageLike] | None,
    style_masks: Sequence[ImageLike] | None,
    auto_masks: str | None,
    protect_faces: bool,
) -> None:
    """Fill ``inputs.masks`` and ``inputs.style_masks`` (see :func:`decode_inputs`)."""
    n = len(inputs.styles)
    frame = (inputs.content_pixels.shape[2], inputs.content_pixels.shape[3])
    if masks is not None and auto_masks is not None:
        raise OptionError("auto_masks", "{option} makes the masks: give it or masks, not both")
    if masks is not None:
        check_count(len(masks), n, "masks")
        inputs.masks = []
        for i, m in enumerate(masks, start=1):
            t = load_mask(m)
            check_frame(t, frame, describe(m, f"mask {i}"), "the content image")
            inputs.masks.append(t)
    elif auto_masks is not None:
        kind, k = parse_auto_masks(auto_masks)
        if kind == "alpha":
            inputs.masks = alpha_masks(inputs.alpha, n)
        else:
            if k != n:
                raise OptionError(
                    "auto_masks",
                    f"{{option}} {auto_masks}: {k} regions for {n} style images; give one style per region",
                )
            inputs.masks = kmeans_masks(inputs.content_pixels, k)
    if style_masks is not None:
        check_count(len(style_masks), n, "style_masks")
        inputs.style_masks = []
        for i, (m, s) in enumerate(zip(style_masks, inputs.style_pixels), start=1):
            t = load_mask(m)
            check_frame(t, (s.shape[2], s.shape[3]), describe(m, f"style mask {i}"), f"style image {i}")
            inputs.style_masks.append(t)
    if protect_faces:
        faces, count = face_mask(inputs.content_pixels)
        warnings.warn(
            FacesProtected(
                f"protect_faces: {count} face{'s' if count != 1 else ''} found"
                + (", kept as in the content" if count else "; nothing is protected")
            ),
            stacklevel=3,
        )
        if count:
            keep = 1.0 - faces
            regions = inputs.masks if inputs.masks is not None else [torch.ones_like(keep)]
            inputs.masks = [fit_mask(m, frame) * keep for m in regions]


def check_before_decoding(
    content: ImageLike,
    styles: Sequence[ImageLike],
    init: str | ImageLike,
    settings: Settings,
    *,
    masks: Sequence[ImageLike] | None = None,
    style_masks: Sequence[ImageLike] | None = None,
    fine_style: ImageLike | None = None,
) -> None:
    """The memory checks that the image files' headers allow, before any pixel is decoded.

    The run itself (:func:`~styletransfer.memory.check_memory`, at the
    content's header size) and the decoded inputs together
    (:func:`~styletransfer.memory.check_decoding`).  In-memory images are
    already decoded and are not counted.

    Raises:
        OptionError: the run will not fit (on ``size``). DecodingTooLarge, ImageError: the inputs.
    """
    p = settings.preset
    size, style_side = needed_sides(p)
    files = [(content, size), *((s, style_side) for s in styles), (fine_style, style_side)]
    if not (isinstance(init, str) and init in INIT_CHOICES):
        files.append((init, size))
    files += [(m, None) for m in (*(masks or ()), *(style_masks or ()))]
    paths = [(f, n) for f, n in files if isinstance(f, (str, os.PathLike))]
    if isinstance(content, (str, os.PathLike)):
        width, height = image_size(content)
        check_memory(p, *scaled_shape(height, width, p.size), settings.device)
    check_decoding(paths)


def check_inputs(inputs: Inputs, settings: Settings) -> None:
    """The checks that need the decoded inputs, before any optimisation.

    Raises:
        OptionError: a blend that does not match the styles, a run that will not fit in memory.
        OptionError: also for a content image too thin for the layers at the first scale.
    """
    p = settings.preset
    blend_weights(p.style_blend, len(inputs.styles))
    first = stage_sizes(p)[0]
    if not p.instant:  # VGG19's layers need a least size; the feed-forward network pads what it gets
        check_shape(inputs.content, inputs.content_pixels, first, p.style_layers + p.content_layers, "content")
    h, w = inputs.content_pixels.shape[2], inputs.content_pixels.shape[3]
    check_memory(p, *scaled_shape(h, w, p.size), settings.device)
