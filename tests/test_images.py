"""Image loading (the seed's load_img) and saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer.errors import OutputError
from styletransfer.images import ImageError, load_img, read_image, resize, save_image, scaled_shape, to_tensor


@pytest.mark.parametrize(
    ("hw", "size", "expected"),
    [
        ((768, 1024), 512, (384, 512)),
        ((640, 1024), 512, (320, 512)),
        ((734, 979), 512, (383, 512)),  # 734 * 512/979 = 383.87 -> truncated
        ((1528, 1200), 512, (512, 402)),  # 1200 * 512/1528 = 402.09
        ((48, 64), 128, (96, 128)),  # up-scaling too
    ],
)
def test_scaled_shape_truncates(hw: tuple[int, int], size: int, expected: tuple[int, int]) -> None:
    assert scaled_shape(*hw, size) == expected


def test_load_img_long_side_and_aspect(tmp_path: Path) -> None:
    p = tmp_path / "a.png"
    Image.new("RGB", (300, 200), (10, 20, 30)).save(p)
    x = load_img(p, 96)
    assert x.shape == (1, 3, 64, 96) and x.dtype == torch.float32
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor([10, 20, 30]) / 255.0)


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "LA", "CMYK"])
def test_load_img_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    p = tmp_path / ("a.tiff" if mode == "CMYK" else "a.png")
    Image.new("RGB", (20, 10), (200, 100, 50)).convert(mode).save(p)
    x = load_img(p, 20)
    assert x.shape == (1, 3, 10, 20)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_resize_matches_half_pixel_bilinear() -> None:
    # Half-pixel centres, no antialias: a 2x downscale of a ramp samples between pixel pairs.
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 3, 2, 8)
    out = resize(ramp, (1, 4))
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([0.5, 2.5, 4.5, 6.5]))


def test_jpeg_is_decoded_with_the_fast_idct(tubingen: Path) -> None:
    # TensorFlow decodes JPEG with libjpeg's JDCT_IFAST; Pillow uses JDCT_ISLOW.
    import simplejpeg

    ours = read_image(tubingen)
    fast = simplejpeg.decode_jpeg(tubingen.read_bytes(), colorspace="RGB", fastdct=True, fastupsample=False)
    assert torch.equal(ours, torch.from_numpy(fast).permute(2, 0, 1)[None].float() / 255.0)
    pil = to_tensor(Image.open(tubingen))
    assert not torch.equal(ours, pil) and float((ours - pil).abs().max()) < 0.05


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = 255  # left half white
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    p = tmp_path / "rot.jpg"
    im.save(p, exif=exif, quality=100)
    x = read_image(p)
    assert x.shape == (1, 3, 20, 10)
    assert float(x[0, :, :10].mean()) > 0.9 and float(x[0, :, 10:].mean()) < 0.1  # white on top


def test_inputs_of_every_kind(tmp_path: Path) -> None:
    arr = (np.arange(4 * 6 * 3) % 256).astype(np.uint8).reshape(4, 6, 3)
    p = tmp_path / "a.png"
    Image.fromarray(arr).save(p)
    expected = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255
    for source in (p, str(p), Image.fromarray(arr), arr, expected[0], expected):
        torch.testing.assert_close(to_tensor(source), expected)
    torch.testing.assert_close(to_tensor(arr.astype(np.float32) / 255), expected)
    with pytest.raises(TypeError):
        to_tensor(42)  # type: ignore[arg-type]
    with pytest.raises(ImageError):
        to_tensor(np.zeros((2, 2, 5)))


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tiff"])
def test_save_formats_follow_the_extension(tmp_path: Path, ext: str) -> None:
    x = torch.rand(1, 3, 12, 16)
    out = save_image(x, tmp_path / f"out{ext}")
    with Image.open(out) as im:
        assert im.format == {".png": "PNG", ".jpg": "JPEG", ".webp": "WEBP", ".tiff": "TIFF"}[ext]
        assert im.size == (16, 12)
    assert [f.name for f in tmp_path.iterdir()] == [f"out{ext}"]  # no temporary left


def test_png_round_trip_is_exact(tmp_path: Path) -> None:
    x = torch.randint(0, 256, (1, 3, 7, 9)).float() / 255
    save_image(x, tmp_path / "x.png")
    assert torch.equal(read_image(tmp_path / "x.png"), x)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="is a directory"):
        read_image(tmp_path)
    text = tmp_path / "text.jpg"
    text.write_text("hello")
    with pytest.raises(ImageError, match="not a readable image"):
        read_image(text)
    with pytest.raises(ImageError, match="unsupported output extension"):
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "x.gif")
    with pytest.raises(OutputError, match="does not exist"):  # a failure at the end of a run: not a usage error
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "nodir" / "x.png")


def test_saved_files_get_the_usual_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from styletransfer import fileio

    for umask, mode in ((0o022, 0o644), (0o077, 0o600)):
        monkeypatch.setattr(fileio, "UMASK", umask)
        out = save_image(torch.rand(1, 3, 4, 4), tmp_path / f"x{umask:o}.png")
        assert out.stat().st_mode & 0o777 == mode


def test_the_umask_is_read_once_and_never_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.umask(0)`` applies to every thread: a file another thread creates meanwhile would be world-writable."""
    import os

    from styletransfer import fileio

    assert fileio.UMASK == fileio._read_umask()  # /proc's value, read without setting it
    calls: list[int] = []
    real = os.umask
    monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or real(mask))
    save_image(torch.rand(1, 3, 4, 4), tmp_path / "x.png")
    assert calls == []


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with one tiny data chunk."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [9500, 100000])
def test_decompression_bomb_is_refused_from_the_header(tmp_path: Path, side: int) -> None:
    import resource

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_claiming(side, side))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageError, match="refused"):
        read_image(bomb)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # < 200 MiB grown


def test_truncated_png_is_a_clean_error(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ImageError, match="not a readable image"):
        read_image(cut)
