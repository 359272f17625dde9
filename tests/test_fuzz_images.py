"""Fuzzing the image loader: whatever the bytes, only :class:`ImageError` escapes.

Inputs are random bytes, valid files (PNG, JPEG, GIF, WebP, TIFF, BMP, in
several modes) cut short, and the same files with bits flipped.  A file either
loads as a finite ``(1, 3, H, W)`` tensor in [0, 1] or raises ``ImageError``
with one line that names it.

CI runs a fixed, bounded number of examples (``derandomize=True``: the same
ones every time).  For a longer run::

    STYLETRANSFER_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_fuzz_images.py \\
        --hypothesis-show-statistics -p no:cacheprovider
"""

from __future__ import annotations

import functools
import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from styletransfer.images import ImageError, ImageNotice, load_img, read_image, scaled_shape

#: Examples per test: 150 in CI, more through the environment.
EXAMPLES = int(os.environ.get("STYLETRANSFER_FUZZ_EXAMPLES", "150"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


@functools.lru_cache(maxsize=1)
def _seeds() -> dict[str, bytes]:
    """Small valid files, one per format and a few odd modes."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    exif = rgb.getexif()
    exif[0x0112] = 6
    frames = [Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)) for _ in range(2)]
    anim = io.BytesIO()
    frames[0].save(anim, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    return {
        "png": _encode(rgb, "PNG"),
        "png-I;16": _encode(Image.fromarray(rng.integers(0, 65536, (6, 8)).astype(np.uint16)), "PNG"),
        "png-palette-transparency": _encode(rgb.convert("P"), "PNG", transparency=3),
        "jpeg": _encode(rgb, "JPEG", quality=90),
        "jpeg-progressive-exif": _encode(rgb, "JPEG", progressive=True, exif=exif),
        "jpeg-cmyk": _encode(rgb.convert("CMYK"), "JPEG"),
        "gif-animated": anim.getvalue(),
        "webp": _encode(rgb, "WEBP", quality=80),
        "webp-lossless": _encode(rgb.convert("RGBA"), "WEBP", lossless=True),
        "tiff": _encode(rgb, "TIFF"),
        "tiff-deflate-float": _encode(
            Image.fromarray(rng.random((6, 8), dtype=np.float32), "F"), "TIFF", compression="tiff_adobe_deflate"
        ),
        "bmp": _encode(rgb, "BMP"),
    }


def _check_loader(data: bytes) -> str:
    """Load ``data`` from a file: a valid tensor, or ImageError naming the file in one line.

    Returns:
        The outcome, for Hypothesis' statistics: ``"decoded"`` or the error's kind.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.img"
        path.write_bytes(data)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                decoded = read_image(path)
                x = load_img(path, 32)
        except ImageError as exc:
            message = str(exc)
            assert message.startswith(f"{path}: ") and "\n" not in message, message
            return "ImageError: " + message[len(str(path)) + 2 :].split(" (")[0].split(";")[0]
    # Whatever the decoders warned comes out as one-line notices that name the file.
    assert all(issubclass(w.category, ImageNotice) and str(w.message).startswith(f"{path}: ") for w in caught), caught
    # The seed's float32 truncation can make the long side 31 (a 6x107 image): compare with scaled_shape.
    assert decoded.ndim == 4 and decoded.shape[:2] == (1, 3) and min(decoded.shape[2:]) >= 1
    assert tuple(x.shape) == (1, 3, *scaled_shape(decoded.shape[2], decoded.shape[3], 32))
    assert bool(x.isfinite().all()) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    return "decoded"


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    event(_check_loader(data))


@FUZZ
@given(st.sampled_from(sorted(_seeds())), st.data())
def test_truncated_files(kind: str, data: st.DataObject) -> None:
    seed = _seeds()[kind]
    cut = data.draw(st.integers(0, len(seed) - 1), label="cut")
    event(f"format: {kind}")
    event(_check_loader(seed[:cut]))


@FUZZ
@given(st.sampled_from(sorted(_seeds())), st.data())
def test_bit_flips(kind: str, data: st.DataObject) -> None:
    seed = bytearray(_seeds()[kind])
    flips = data.draw(st.lists(st.integers(0, 8 * len(seed) - 1), min_size=1, max_size=8), label="bits")
    for bit in flips:
        seed[bit // 8] ^= 1 << (bit % 8)
    event(f"format: {kind}")
    event(_check_loader(bytes(seed)))


@FUZZ
@given(st.sampled_from(sorted(_seeds())), st.data())
def test_header_bytes_overwritten(kind: str, data: st.DataObject) -> None:
    # Headers hold the sizes, counts and offsets that decoders trust: overwrite bytes among the first 64.
    seed = bytearray(_seeds()[kind])
    edits = data.draw(
        st.lists(st.tuples(st.integers(0, min(63, len(seed) - 1)), st.integers(0, 255)), min_size=1, max_size=4),
        label="edits",
    )
    for position, value in edits:
        seed[position] = value
    event(f"format: {kind}")
    event(_check_loader(bytes(seed)))


def test_seeds_are_valid_images() -> None:
    # The mutations start from files that do load.
    for kind, data in _seeds().items():
        with Image.open(io.BytesIO(data)) as im:
            im.load()
        assert _check_loader(data) == "decoded", kind
