"""Checking what a studio request asks for: the options it may set and the images it uploads.

The studio decides by an allow-list (:data:`WEB_OPTIONS`): an option that is
not on it is refused with 422 naming it, so an option added to the table later
stays out of the studio until someone decides it is safe.  No option a
request sets is a path on the server: masks and fine styles come as uploads,
and the server writes their saved paths into the job itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import OptionError
from ..options import BY_NAME, INIT_CHOICES, check_options

#: The options a studio request may set (``init`` only as content, noise or style).
WEB_OPTIONS: frozenset[str] = frozenset(
    {
        "preset",
        "size",
        "steps",
        "time",
        "lr",
        "style_weight",
        "content_weight",
        "tv_weight",
        "init",
        "style_blend",
        "strength",
        "preserve_colors",
        "style_scale",
        "pooling",
        "content_layers",
        "style_layers",
        "style_layer_weights",
        "mask_mode",
        "tile_size",
        "auto_masks",
        "protect_faces",
        "seed",
        "device",
        "precision",
    }
)

#: Why each option off the allow-list is refused (the 422's message says it).
NOT_IN_STUDIO: dict[str, str] = {
    "masks": "a path on the server; upload the masks as form fields 'mask', one per style",
    "style_masks": "a path on the server; upload them as form fields 'style_mask', one per style",
    "fine_style": "a path on the server; upload the image as the form field 'fine_style'",
    "weights": "a path on the server; the server uses its own weights",
    "log": "a file on the server; the studio keeps no logs for jobs",
    "figures": "a folder on the server; figures are not written by the studio",
    "figures_every": "figures are not written by the studio",
    "save_masks": "a folder on the server; the studio does not write mask images",
    "save_every": "the server keeps its own snapshot",
    "manifest": "the studio always writes the manifest",
}

#: The most style images (and so masks) one job takes.
MAX_STYLES = 16

#: The form fields of ``POST /api/jobs``.
FORM_FIELDS = ("content", "style", "mask", "style_mask", "fine_style", "options")

#: The form fields of ``POST /api/instant``: the uploads, or a bundled example's name instead of one.
INSTANT_FIELDS = ("content", "style", "content_example", "style_example", "options")


class WebError(Exception):
    """A refused request: the status, the message and the field it is about."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def refuse_option(name: str) -> None:
    """422 for an option name a request may not set (unknown, or off the allow-list)."""
    if name not in BY_NAME:
        raise WebError(422, f"{name}: unknown option; known options: {', '.join(BY_NAME)}", name)
    if name not in WEB_OPTIONS:
        raise WebError(422, f"{name}: not available in the studio ({NOT_IN_STUDIO[name]})", name)


def check_request_options(options: Any) -> dict[str, Any]:
    """The ``options`` object of a request, checked: allowed keys, types and ranges, nothing that names a path."""
    if not isinstance(options, dict):
        raise WebError(422, "options: must be a JSON object of option names and values", "options")
    for name in options:
        refuse_option(str(name))
    try:
        given = check_options(options)
    except OptionError as exc:
        raise WebError(422, exc.render(), exc.option) from None
    init = given.get("init")
    if init is not None and init not in INIT_CHOICES:
        raise WebError(422, f"init: choose from {', '.join(INIT_CHOICES)} (the studio takes no paths)", "init")
    return given


_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}

#: The file extensions an accepted upload is saved with.
EXTENSIONS: tuple[str, ...] = tuple(_EXTENSIONS.values())


def image_size(path: Path, field: str, max_pixels: int) -> tuple[int, int]:
    """An upload's width and height from its header alone (nothing decoded); 422 naming ``field`` when too large."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise WebError(422, f"{field}: the image is too large to decode (a decompression bomb?)", field) from None
    except Exception:
        raise WebError(422, f"{field}: not an image that can be read (PNG, JPEG, WebP...)", field) from None
    if w * h > max_pixels:
        raise WebError(422, f"{field}: {w}x{h} is {w * h:,} pixels, over the limit of {max_pixels:,}", field)
    return w, h


#: Bytes of memory one input pixel takes while the runner decodes it: RGB bytes, then three float32s.
DECODE_BYTES_PER_PIXEL = 3 + 3 * 4


def check_job_pixels(
    uploads: Sequence[tuple[str, Path]], max_pixels: int, max_job_pixels: int, free_bytes: int | None = None
) -> int:
    """The pixels of all a job's uploads together, from their headers; 422 naming the field that passes a limit.

    The runner decodes every input at full size, in floats, before its own
    memory guard: this check runs first, before anything is decoded or queued.
    The limits are ``max_job_pixels`` and, when ``free_bytes`` (the memory
    free now) is known, what that memory holds at
    :data:`DECODE_BYTES_PER_PIXEL` bytes a pixel.
    """
    total = 0
    for field, path in uploads:
        w, h = image_size(path, field, max_pixels)
        total += w * h
        if total > max_job_pixels:
            raise WebError(
                422,
                f"{field}: the job's images come to {total:,} pixels or more, over this server's limit of "
                f"{max_job_pixels:,} per job",
                field,
            )
        if free_bytes is not None and total * DECODE_BYTES_PER_PIXEL > free_bytes:
            need = total * DECODE_BYTES_PER_PIXEL
            raise WebError(
                422,
                f"{field}: decoding the job's images would take {need / 2**30:.1f} GiB or more of memory; "
                f"{free_bytes / 2**30:.1f} GiB is free now",
                field,
            )
    return total


def check_image(path: Path, field: str, max_pixels: int) -> str:
    """Decode an upload fully; its file extension.  422 naming ``field`` for anything that is not a usable image."""
    image_size(path, field, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                fmt = im.format or ""
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise WebError(422, f"{field}: the image is too large to decode (a decompression bomb?)", field) from None
    except Exception:
        raise WebError(422, f"{field}: not an image that can be read (PNG, JPEG, WebP...)", field) from None
    if fmt not in _EXTENSIONS:
        raise WebError(422, f"{field}: {fmt} images are not accepted; use PNG, JPEG or WebP", field)
    return _EXTENSIONS[fmt]


def bounded_int(text: str, field: str, low: int, high: int) -> int:
    """A query parameter as a whole number from ``low`` to ``high``; 422 naming ``field`` otherwise."""
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise WebError(422, f"{field}: must be a whole number from {low} to {high}, not {text[:40]!r}", field)
    return int(text)


__all__ = [
    "DECODE_BYTES_PER_PIXEL",
    "EXTENSIONS",
    "FORM_FIELDS",
    "INSTANT_FIELDS",
    "MAX_STYLES",
    "NOT_IN_STUDIO",
    "WEB_OPTIONS",
    "WebError",
    "bounded_int",
    "check_image",
    "check_job_pixels",
    "check_request_options",
    "image_size",
    "refuse_option",
]
