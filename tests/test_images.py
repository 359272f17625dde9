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
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


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

    assert fileio._read_umask() == fileio.UMASK  # /proc's value, read without setting it
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


def _old_load_img(path: Path, size: int) -> torch.Tensor:
    """The loader as it was: the whole file decoded, then the seed's resize."""
    t = read_image(path)
    return resize(t, scaled_shape(t.shape[2], t.shape[3], size))


@pytest.mark.parametrize("name", ["tubingen.jpg", "starry_night.jpg"])
def test_the_tutorial_path_is_bit_identical_at_its_sizes(name: str) -> None:
    """The seed-faithful loader at the tutorial's size (and any size up to half the image): the same bits as before."""
    from styletransfer.examples import example_path
    from styletransfer.pipeline import decode_inputs
    from styletransfer.presets import TUTORIAL, get_preset

    path = example_path(name)
    for size in (TUTORIAL.size, 384, 257):
        assert torch.equal(load_img(path, size), _old_load_img(path, size)), size
    for preset in (TUTORIAL, TUTORIAL.with_overrides(size=128)):  # the seed's preset decodes whole at any size
        inputs = decode_inputs(path, [path], preset=preset)
        assert torch.equal(inputs.content_pixels, read_image(path)) and torch.equal(
            inputs.style_pixels[0], read_image(path)
        )
    fast = decode_inputs(path, [path], preset=get_preset("fast").with_overrides(size=128))
    assert fast.content_pixels.shape[-1] == read_image(path).shape[-1] // 4  # others decode at the size used


@pytest.mark.parametrize(("size", "factor"), [(256, 2), (128, 4), (64, 8), (32, 8)])
def test_a_large_image_is_decoded_at_the_size_it_is_used(size: int, factor: int) -> None:
    """Four times the size needed or more: JPEG's scaled IDCT decodes it smaller; the shape is the same.

    The pixels are closer to an antialiased resize of the whole image than the old path's (a bilinear
    resize without antialiasing from the full size samples 4 of every factor**2 pixels).
    """
    import torch.nn.functional as F

    from styletransfer.examples import example_path
    from styletransfer.images import reduce_factor

    path = example_path("tubingen.jpg")  # 1024x768
    assert reduce_factor(1024, 768, size) == factor
    assert tuple(read_image(path, size).shape) == (1, 3, 768 // factor, 1024 // factor)
    reduced = read_image(path, size)  # the engine's decode
    new, old = resize(reduced, scaled_shape(*reduced.shape[2:], size)), _old_load_img(path, size)
    assert new.shape == old.shape
    torch.testing.assert_close(load_img(path, size), old, rtol=0, atol=0)  # the seed's loader decodes whole
    smooth = F.interpolate(read_image(path), size=tuple(old.shape[2:]), mode="bilinear", antialias=True)
    assert float((new - smooth).abs().mean()) < float((old - smooth).abs().mean())
    assert float((new - old).abs().mean()) < 0.05


@pytest.mark.parametrize("kind", ["png", "exif-rotated-jpeg", "webp"])
def test_other_formats_are_reduced_after_decoding_the_right_way_up(tmp_path: Path, kind: str) -> None:
    from styletransfer.images import image_size

    rng = np.random.default_rng(1)
    pixels = np.repeat(np.repeat(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8), 8, axis=0), 8, axis=1)
    path = tmp_path / f"big.{'jpg' if 'jpeg' in kind else kind}"
    if kind == "exif-rotated-jpeg":
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(pixels).save(path, exif=exif, quality=95)
    else:
        Image.fromarray(pixels).save(path)
    expected = (80 * 8, 60 * 8) if kind != "exif-rotated-jpeg" else (60 * 8, 80 * 8)
    assert image_size(path) == expected
    full, small = read_image(path), read_image(path, 80)  # 640 px, needed 80: a factor of 4
    assert tuple(small.shape[2:]) == (full.shape[2] // 4, full.shape[3] // 4)
    assert load_img(path, 80).shape == _old_load_img(path, 80).shape


def test_the_inputs_memory_is_checked_from_the_headers(
    tmp_path: Path, tiny_pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seventeen 80-megapixel styles: refused from their headers (nothing decoded), one line, exit 2."""
    from PIL import ImageFile

    import styletransfer.memory
    from styletransfer.cli import main

    content, _ = tiny_pair
    styles = []
    for i in range(17):
        styles.append(tmp_path / f"style{i}.png")
        styles[-1].write_bytes(_png_claiming(10_001, 8_000))  # an odd side: no factor divides it, decoded whole
    decoded: list[object] = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self) or real_load(self))
    monkeypatch.setattr(styletransfer.memory, "available_bytes", lambda device: 2**30)
    code = main([str(content), *map(str, styles), "-o", str(tmp_path / "o.png"), "--size", "32", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "style0.png: the input images need about 15.5 GiB of memory to decode, but 1.0 GiB are available" in err
    assert decoded == [] and not (tmp_path / "o.png").exists()
