"""Image input and output.

Images travel through the library as float32 tensors shaped ``(1, 3, H, W)``
with RGB values in [0, 1].  :func:`load_img` reproduces the seed's loader:
the longer side is scaled to ``size`` (float32 arithmetic, sizes truncated
with ``int()``), resampled bilinearly with half-pixel centres and no
antialiasing, exactly like ``tf.image.resize``.

JPEG files are decoded like ``tf.image.decode_image`` does: libjpeg-turbo's
fast integer IDCT (``JDCT_IFAST``) with fancy upsampling.  Pillow uses the
accurate IDCT, which moves pixels by a level or two and the seed's loss with
them; with the fast IDCT the loss agrees with the seed's (docs/benchmarks.md,
"The tutorial preset against the seed's own run").
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from .errors import InputError, Notice
from .fileio import regular_file
from .fileio import save_file_atomically as save_file_atomically
from .options import MAX_SIZE as MAX_SIZE

#: What the API accepts as an image.
ImageLike = str | os.PathLike[str] | Image.Image | np.ndarray | Tensor

#: Output formats by file extension.
FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


#: The largest input decoded, in pixels: Pillow's decompression-bomb limit
#: (89,478,485, about 9459 x 9459; 1 GiB as float32 RGB). Checked from the
#: header, before any pixel is decoded.
MAX_PIXELS: int = Image.MAX_IMAGE_PIXELS or 89_478_485


class ImageError(InputError):
    """An image cannot be read, or an output path has no image format."""


class ImageNotice(Notice):
    """An input was read, but not all of it: e.g. only the first frame of an animation."""


def _one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


def exception_line(exc: BaseException) -> str:
    """What ``exc`` says, on one line (:func:`_one_line`), or its class's name when it says nothing."""
    return _one_line(str(exc)) or type(exc).__name__


def _pil_to_tensor(image: Image.Image) -> Tensor:
    """An upright ``(1, 3, H, W)`` float32 tensor in [0, 1] from any PIL mode.

    16-bit and 32-bit integer greyscale (``I;16*``, ``I``) is scaled by 1/65535
    and clipped; 32-bit float greyscale (``F``) is taken as [0, 1] and clipped,
    like a float array; an alpha channel (or palette transparency) is dropped,
    as the seed's ``decode_image(channels=3)`` does.
    """
    image = ImageOps.exif_transpose(image)
    if image.mode != "RGB":
        if image.mode.startswith("I") or image.mode == "F":
            arr = np.asarray(image, dtype=np.float32) / (1.0 if image.mode == "F" else 65535.0)
            _check_finite(torch.from_numpy(arr), f"a greyscale image of mode {image.mode}")
            arr = np.repeat(np.clip(arr, 0.0, 1.0)[..., None], 3, axis=2)
            return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None]
        has_alpha = "transparency" in image.info or image.mode in ("RGBA", "RGBa", "LA", "La", "PA")
        if image.mode == "La":
            image = image.convert("LA")
        image = image.convert("RGBA").convert("RGB") if has_alpha else image.convert("RGB")
    arr = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 255.0


def _array_to_tensor(arr: np.ndarray) -> Tensor:
    """``(H, W)``, ``(H, W, C)`` arrays; uint8 is scaled by 1/255, floats kept."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ImageError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), not {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        t = torch.from_numpy(np.ascontiguousarray(arr)).float() / 255.0
    else:
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    _check_finite(t, "an image array")
    return t.permute(2, 0, 1)[None].clamp(0.0, 1.0)


def _check_finite(t: Tensor, what: str) -> None:
    """Refuse NaN or infinite values, which clamping would not remove."""
    if not bool(torch.isfinite(t).all()):
        raise ImageError(f"{what} has NaN or infinite values; give values in [0, 1]")


def _tensor_to_tensor(t: Tensor) -> Tensor:
    """``(3, H, W)`` or ``(1, 3, H, W)`` float tensors in [0, 1]."""
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4 or t.shape[0] != 1 or t.shape[1] != 3:
        raise ImageError(f"an image tensor must be (3, H, W) or (1, 3, H, W), not {tuple(t.shape)}")
    t = t.detach().float()
    _check_finite(t, "an image tensor")
    return t.clamp(0.0, 1.0).cpu()


def _what_it_is(head: bytes) -> str:
    """Why the first bytes of a file are not an image Pillow reads, for an error message."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<") and b"<svg" in text:
        return "an SVG (vector) image; export it as PNG first"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page (a failed download?); save the image itself"
    decoded = ""
    for cut in range(4):  # the 512 bytes read may end inside a UTF-8 character
        try:
            decoded = head[: len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    if decoded and all(c.isprintable() or c.isspace() for c in decoded):
        return "a text file; give a PNG, JPEG, WebP or TIFF image"
    return "an unknown format; give a PNG, JPEG, WebP or TIFF image"


def _check_path(p: Path) -> None:
    """Refuse a missing file, a directory, a FIFO or device, an unreadable and an empty file, each with its own message."""
    regular_file(p, "an image", ImageError)
    try:
        with open(p, "rb") as f:
            empty = not f.read(1)
    except OSError as exc:
        raise ImageError(f"{p}: cannot open it ({exc.strerror}); check its permissions") from exc
    if empty:
        raise ImageError(f"{p}: not a readable image: the file is empty; give a PNG, JPEG, WebP or TIFF image")


def _open_header(p: Path) -> Image.Image:
    """Open ``p`` with PIL, reading its header only, and check it: a file, an image, at most :data:`MAX_PIXELS`.

    The caller loads (decodes) or closes the image.
    """
    _check_path(p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(p)  # reads the header only
    except Image.DecompressionBombError as exc:
        raise ImageError(_too_big(p)) from exc
    except UnidentifiedImageError as exc:
        with open(p, "rb") as f:
            raise ImageError(f"{p}: not a readable image: {_what_it_is(f.read(512))}") from exc
    except Exception as exc:  # Pillow's header parsers raise many types for corrupt data
        reason = exception_line(exc)
        raise ImageError(
            f"{p}: not a readable image: the header is damaged ({reason}); re-export or re-download it"
        ) from exc
    if im.size[0] * im.size[1] > MAX_PIXELS or im.size[0] < 1 or im.size[1] < 1:
        im.close()
        if im.size[0] * im.size[1] > MAX_PIXELS:
            raise ImageError(_too_big(p))
        raise ImageError(f"{p}: not a readable image: its header says {im.size[0]}x{im.size[1]} pixels; re-export it")
    return im


def _too_big(p: Path) -> str:
    return f"{p}: refused, the image has more than the {MAX_PIXELS} pixels this tool decodes; shrink it first"


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` of an image file, upright (EXIF orientation applied), from its header alone.

    Raises:
        ImageError: as :func:`open_image`, for what the header shows (nothing is decoded).
    """
    with _open_header(Path(path)) as im:
        width, height = im.size
        try:
            if im.format == "PNG":  # Pillow's PNG getexif() decodes the image to find a late eXIf chunk
                exif = Image.Exif()
                if im.info.get("exif"):
                    exif.load(im.info["exif"])
            else:
                exif = im.getexif()
            orientation = exif.get(0x0112, 1)
        except Exception:  # corrupt EXIF: read_image says so when it decodes
            orientation = 1
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open an image file with PIL and decode it, raising :class:`ImageError` on failure.

    The pixel count is checked from the header, before anything is decoded
    (:data:`MAX_PIXELS`).  The caller closes the image (it may hold the file
    open, for animations).
    """
    p = Path(path)
    return _load(_open_header(p), p)


def _load(im: Image.Image, p: Path) -> Image.Image:
    """Decode ``im`` (opened from ``p``), closing it and raising :class:`ImageError` on failure."""
    try:
        im.load()
    except Exception as exc:  # the decoders too: OSError, SyntaxError, struct.error, zlib.error, ...
        im.close()
        reason = exception_line(exc)
        raise ImageError(
            f"{p}: not a readable image: the file is damaged or truncated ({reason}); re-export or re-download it"
        ) from exc
    return im


#: EXIF orientation tag values and the transpose that makes the image upright.
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _decode_jpeg_like_tensorflow(path: Path, pil: Image.Image, factor: int = 1) -> Image.Image | None:
    """Decode a JPEG with the fast integer IDCT, as TensorFlow does; ``None`` if not possible.

    ``factor`` (1, 2, 4 or 8, dividing both sides) has libjpeg-turbo decode at
    that fraction of the size (a scaled IDCT: the full-size pixels are never made).
    """
    if pil.format != "JPEG" or pil.mode not in ("RGB", "L"):
        return None
    import simplejpeg

    width, height = _file_size(pil, factor)
    try:
        arr = simplejpeg.decode_jpeg(
            path.read_bytes(),
            colorspace="RGB",
            fastdct=True,
            fastupsample=False,
            min_height=height // factor if factor > 1 else 0,
            min_width=width // factor if factor > 1 else 0,
        )
    except (ValueError, OSError):
        return None
    if arr.shape[:2] != (height // factor, width // factor):
        return None
    upright = Image.fromarray(arr, "RGB")
    orientation = pil.getexif().get(0x0112, 1)
    if orientation in _EXIF_TRANSPOSE:
        upright = upright.transpose(_EXIF_TRANSPOSE[orientation])
    return upright


def _file_size(pil: Image.Image, factor: int) -> tuple[int, int]:
    """The size in the file (before a JPEG draft by ``factor`` shrank ``pil.size``)."""
    return pil.size[0] * factor, pil.size[1] * factor


#: The factors an image may be shrunk by while it is decoded: JPEG's scaled IDCT takes 1/2, 1/4 and 1/8.
REDUCE_FACTORS = (8, 4, 2)

#: Modes that :meth:`PIL.Image.Image.reduce` takes (others are decoded at full size).
_REDUCIBLE = ("RGB", "RGBA", "L", "LA", "I", "F", "CMYK")


def reduce_factor(width: int, height: int, needed: int | None) -> int:
    """How much an image of ``width`` x ``height`` is shrunk while decoding, for use at long side ``needed``.

    A factor of :data:`REDUCE_FACTORS` (else 1) that divides both sides and
    leaves at least ``2 * needed`` pixels on the long side: the exact resize
    to ``needed`` (:func:`resize`, unchanged) then still reads an image twice
    its size or more.  Because the factor is a power of two dividing both
    sides, :func:`scaled_shape` gives the same shape from the shrunk image as
    from the full one (the float32 scale is multiplied by the factor exactly).
    An image less than twice ``needed`` (four times, for a factor) is decoded
    as it always was, so the seed's path is unchanged at its sizes.
    """
    if needed is None:
        return 1
    for factor in REDUCE_FACTORS:
        if width % factor == 0 and height % factor == 0 and max(width, height) // factor >= 2 * needed:
            return factor
    return 1


def decoded_bytes(path: str | os.PathLike[str], needed: int | None = None) -> tuple[int, int]:
    """About the memory :func:`read_image` takes for ``path`` at ``needed``, from the header alone.

    Returns:
        ``(kept, transient)``: the float32 tensor the run keeps (12 bytes a
        pixel of the reduced size) and the 8-bit image Pillow decodes first
        and frees after (4 bytes a pixel, before any ``reduce``; a JPEG is
        decoded at its reduced size).

    Raises:
        ImageError: as :func:`image_size`.
    """
    with _open_header(Path(path)) as im:
        width, height = im.size
        is_jpeg = im.format == "JPEG"
    factor = reduce_factor(width, height, needed)
    pixels = width * height
    return 12 * pixels // factor**2, 4 * (pixels // factor**2 if is_jpeg else pixels)


def read_image(path: str | os.PathLike[str], needed: int | None = None) -> Tensor:
    """Read an image file as a ``(1, 3, H, W)`` tensor, upright, JPEG decoded as TensorFlow does.

    ``needed``: the long side the image will be resized to (the largest, over
    the scales), if known.  An image at least four times larger is decoded
    smaller, by the factor of :func:`reduce_factor` (a JPEG by its scaled
    IDCT, so the full-size pixels never exist; other formats are reduced by
    averaging after decoding, before they become floats).

    An animation (GIF, APNG, WebP) or a multi-page TIFF gives its first frame,
    with an :class:`ImageNotice` warning.

    Raises:
        ImageError: for anything that is not a readable image, with one line
            that names the file and says what to do; never another exception
            from the decoders.
    """
    p = Path(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        header = _open_header(p)
        width, height = header.size
        factor = reduce_factor(width, height, needed)
        if factor > 1 and header.format == "JPEG":
            with contextlib.suppress(Exception):  # a draft is an optimisation: without it the image decodes whole
                header.draft(header.mode, (width // factor, height // factor))
            if header.size != (width // factor, height // factor):
                header.close()
                header, factor = _open_header(p), 1  # a draft that did not give the size asked: decode it all
        with _load(header, p) as pil:
            try:
                animated = bool(getattr(pil, "is_animated", False))
                decoded = _decode_jpeg_like_tensorflow(p, pil, factor if pil.format == "JPEG" else 1) or pil
                if factor > 1 and pil.format != "JPEG" and decoded.mode in _REDUCIBLE:
                    decoded = ImageOps.exif_transpose(decoded).reduce(factor)
                tensor = _pil_to_tensor(decoded)
            except Exception as exc:  # corrupt EXIF or an odd mode can fail after decoding
                reason = exception_line(exc)
                raise ImageError(
                    f"{p}: not a readable image: the file is damaged ({reason}); re-export or re-download it"
                ) from exc
    _pass_on(caught, p)
    if animated:
        warnings.warn(ImageNotice(f"{p}: an animation; using its first frame"), stacklevel=2)
    return tensor


def _pass_on(caught: list[warnings.WarningMessage], path: Path) -> None:
    """Warn again what decoding ``path`` warned: Pillow's own (corrupt metadata) as :class:`ImageNotice`.

    Pillow's warnings name neither the file nor its consequence; as notices they
    become one line that names the file.
    """
    pil_dir = str(Path(Image.__file__).parent)
    seen: set[str] = set()
    for w in caught:
        text = _one_line(str(w.message))
        if issubclass(w.category, Image.DecompressionBombWarning) or text in seen:
            continue
        seen.add(text)
        if w.filename.startswith(pil_dir) and issubclass(w.category, UserWarning):
            warnings.warn(ImageNotice(f"{path}: {text}"), stacklevel=3)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def to_tensor(image: ImageLike, needed: int | None = None) -> Tensor:
    """Any accepted image as a ``(1, 3, H, W)`` float32 tensor in [0, 1] (no resizing).

    ``needed``: for a file, the long side it will be resized to; a much larger
    one is decoded smaller (:func:`read_image`).
    """
    if isinstance(image, Tensor):
        t = _tensor_to_tensor(image)
    elif isinstance(image, np.ndarray):
        t = _array_to_tensor(image)
    elif isinstance(image, Image.Image):
        try:
            t = _pil_to_tensor(image)
        except (ValueError, OSError) as exc:
            raise ImageError(f"cannot read a PIL image of mode {image.mode} ({_one_line(str(exc))})") from exc
    elif isinstance(image, (str, os.PathLike)):
        t = read_image(image, needed)
    else:
        raise TypeError(f"cannot read an image from {type(image).__name__}")
    return t.contiguous()


def scaled_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """The seed's target shape: the longer side becomes ``size``.

    ``scale = size / max(h, w)`` and ``new = int(h * scale), int(w * scale)``,
    computed in float32 as TensorFlow does (truncation, not rounding).
    """
    h, w = np.float32(height), np.float32(width)
    scale = np.float32(size) / max(h, w)
    return max(1, int(h * scale)), max(1, int(w * scale))


def resize(image: Tensor, shape: tuple[int, int]) -> Tensor:
    """Bilinear resize with half-pixel centres and no antialiasing (``tf.image.resize``)."""
    if tuple(image.shape[-2:]) == tuple(shape):
        return image
    return F.interpolate(image, size=shape, mode="bilinear", align_corners=False, antialias=False)


def load_img(image: ImageLike, size: int = 512) -> Tensor:
    """The seed's ``load_img``: read, then scale the longer side to ``size``.

    Up-scaling happens too when the image is smaller than ``size``.  A file
    is decoded whole, as the seed decodes it, whatever its size: the pixels
    are the seed's (the stylisation engine decodes a much larger file
    smaller first, :func:`reduce_factor`, except under the ``tutorial`` preset).

    Returns:
        ``(1, 3, H, W)`` float32 RGB in [0, 1].
    """
    t = to_tensor(image)
    return resize(t, scaled_shape(t.shape[2], t.shape[3], size))


def to_pil(image: Tensor) -> Image.Image:
    """A ``(1, 3, H, W)`` or ``(3, H, W)`` [0, 1] tensor as an 8-bit RGB PIL image (rounded)."""
    t = image.detach().float().cpu()
    _check_finite(t, "the image to convert")  # a NaN image is never written
    if t.ndim == 4:
        t = t[0]
    arr = (t.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def output_format(path: str | os.PathLike[str]) -> str:
    """The PIL format for an output path's extension, or :class:`ImageError`."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise ImageError(
            f"{path}: unsupported output extension {ext or '(none)'!r}; use one of {', '.join(sorted(set(FORMATS)))}"
        )
    return FORMATS[ext]


def save_image(image: Tensor | Image.Image, path: str | os.PathLike[str]) -> Path:
    """Write ``image`` to ``path`` atomically, in the format its extension names.

    The image goes to a temporary file in the same directory first, which then
    replaces ``path`` in one rename: an existing file is never left half-written.
    A tensor with NaN or infinite values is refused (:class:`ImageError`).
    """
    p = Path(path)
    fmt = output_format(p)
    if isinstance(image, Tensor):
        _check_finite(image.detach(), f"{p}: refused, the image to write")
    pil = image if isinstance(image, Image.Image) else to_pil(image)
    if fmt == "JPEG" and pil.mode not in ("RGB", "L"):
        pil = pil.convert("RGB")
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    return save_file_atomically(p, lambda f: pil.save(f, format=fmt, **options))


def read_alpha(image: ImageLike) -> np.ndarray | None:
    """The alpha channel of ``image`` as an ``(H, W)`` uint8 array, upright; ``None`` if opaque by format.

    Images with an alpha channel (RGBA, LA, PA, or a palette/greyscale image
    with a transparency entry) and ``(H, W, 4)`` arrays have one; paths are
    opened as :func:`read_image` does.
    """
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[2] == 4:
            a = image[..., 3]
            return a if a.dtype == np.uint8 else np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)
        return None
    if isinstance(image, (str, os.PathLike)):
        image = open_image(image)
    if not isinstance(image, Image.Image):
        return None
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return None
    upright = ImageOps.exif_transpose(image)
    alpha: np.ndarray = np.asarray(upright.convert("RGBA"), dtype=np.uint8)[..., 3].copy()
    return alpha


def with_alpha(image: Tensor, alpha: np.ndarray | None) -> Image.Image:
    """``image`` as a PIL image, with ``alpha`` re-attached (resized bilinearly if the shape differs).

    When the shapes agree the alpha bytes are kept exactly.
    """
    pil = to_pil(image)
    if alpha is None:
        return pil
    if alpha.shape != (pil.height, pil.width):
        a = torch.from_numpy(alpha.astype(np.float32))[None, None]
        a = resize(a, (pil.height, pil.width)).round().clamp(0, 255)
        alpha = a[0, 0].to(torch.uint8).numpy()
    rgba = pil.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.ascontiguousarray(alpha), "L"))
    return rgba
