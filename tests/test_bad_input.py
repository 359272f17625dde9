"""Bad and odd inputs and options: the table in docs/robustness.md, one test (or case) per row.

Each case either works (odd but valid images) or ends with exactly one line on
stderr, ``styletransfer: error: ...``, that names the file or option, with exit
code 2 for usage errors and 1 for runtime failures, and no traceback unless
``--debug`` is given.  Bad files are made in ``tmp_path``; the runs that must
succeed take one step of the ``tutorial`` preset at 32 px.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer import stylize
from styletransfer.cli import main
from styletransfer.images import MAX_SIZE

#: One cheap step at 32 px: enough to run the whole pipeline.
FAST = ["--preset", "tutorial", "--size", "32", "--steps", "1", "--device", "cpu"]


def _cli(argv: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI in-process; the exit code (argparse's ``SystemExit`` too) and stderr."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def _one_error_line(err: str) -> str:
    """The single stderr line of a failed run (asserting there is exactly one, and no traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("styletransfer") and ": error: " in lines[0], err
    return lines[0]


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, bit_depth: int, colour_type: int, raw: bytes) -> bytes:
    """A PNG from its header fields and unfiltered scanlines (each starts with filter byte 0)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _rgb48_png(h: int, w: int) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one)."""
    arr = np.random.default_rng(1).integers(0, 65536, (h, w, 3)).astype(">u2")
    return _png(w, h, 16, 2, b"".join(b"\x00" + row.tobytes() for row in arr))


# --- Input files that cannot be read: exit 2, one line naming the file -------------------------

#: name -> (file name, bytes or None for "do not create", expected words in the error line)
UNREADABLE: dict[str, tuple[str, Callable[[], bytes | None], str]] = {
    "missing-file": ("missing.jpg", lambda: None, "no such file"),
    "empty-file": ("empty.jpg", lambda: b"", "the file is empty"),
    "truncated-jpeg": (
        "cut.jpg",
        lambda: _encoded(Image.fromarray(_noise(64, 64)), "JPEG")[:1500],
        "damaged or truncated",
    ),
    "truncated-png": (
        "cut.png",
        lambda: _encoded(Image.fromarray(_noise(64, 64)), "PNG")[:300],
        "damaged or truncated",
    ),
    "text-named-jpg": ("notes.jpg", lambda: b"shopping list: eggs, milk\n", "a text file"),
    "html-page": ("download.jpg", lambda: b"<!DOCTYPE html>\n<html><body>Not found</body></html>\n", "an HTML page"),
    "svg": (
        "logo.svg",
        lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>\n',
        "SVG (vector) image; export it as PNG",
    ),
    "random-bytes": (
        "noise.png",
        lambda: bytes(np.random.default_rng(2).integers(0, 256, 400, dtype=np.uint8)),
        "unknown format",
    ),
    "png-header-100000x100000": ("bomb.png", lambda: _png(100000, 100000, 8, 2, b"\x00" * 16), "refused"),
    "bmp-header-too-big-for-its-data": (
        "short.bmp",
        lambda: _encoded(Image.fromarray(_noise(8, 8)), "BMP")[:-40],
        "damaged or truncated",
    ),
}


@pytest.mark.parametrize("role", ["content", "style"])
@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_input_is_one_line_exit_2(
    case: str, role: str, tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, make, words = UNREADABLE[case]
    bad = tmp_path / name
    data = make()
    if data is not None:
        bad.write_bytes(data)
    content, style = tiny_pair
    inputs = [bad, style] if role == "content" else [content, bad]
    out = tmp_path / "out.png"
    code, err = _cli([*inputs, "-o", out, *FAST, "-q"], capsys)
    line = _one_error_line(err)
    assert code == 2 and words in line and str(bad) in line
    assert not out.exists()


def test_directory_as_input(tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content, _ = tiny_pair
    folder = tmp_path / "photos"
    folder.mkdir()
    code, err = _cli([content, folder, "-o", tmp_path / "out.png", *FAST], capsys)
    assert code == 2 and f"{folder}: is a directory" in _one_error_line(err)


def test_png_bomb_is_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # "Before any large allocation": the pixel count comes from the header and no decoder runs.
    from PIL import ImageFile

    from styletransfer.images import ImageError, read_image

    decoded: list[object] = []
    real_load = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> object:
        decoded.append(self)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png(100000, 100000, 8, 2, b"\x00" * 16))
    with pytest.raises(ImageError, match="refused, the image has more than the 89478485 pixels"):
        read_image(bomb)
    assert decoded == []
    small = tmp_path / "small.png"  # the spy does see a decode when there is one
    small.write_bytes(_png(2, 1, 8, 2, b"\x00" + b"\x7f" * 6))
    read_image(small)
    assert decoded != []


@pytest.mark.parametrize(
    ("size", "words"),
    [(32, "use --size 6400 or more, or crop it"), (512, "use --size 6400")],
    ids=["size-32", "size-512"],
)
def test_very_wide_image_names_the_size_that_works(
    size: int, words: str, tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 4000x10 at --size 32 would be 32x0 (kept as 32x1): VGG19's four pools need 16 px on each side.
    wide = tmp_path / "wide.png"
    Image.fromarray(_noise(10, 4000)).save(wide)
    content, _ = tiny_pair
    code, err = _cli([content, wide, "-o", tmp_path / "o.png", *FAST, "--size", size], capsys)
    line = _one_error_line(err)
    assert code == 2 and str(wide) in line and "4000x10 image" in line and "at least 16 on each side" in line
    assert words in line


def test_extreme_aspect_ratio_says_crop(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 16383 / 16 * 1 px: no --size within the limit gives 16 px on the short side.
    strip = tmp_path / "strip.png"
    Image.fromarray(_noise(1, 20000)).save(strip)
    content, _ = tiny_pair
    code, err = _cli([strip, content, "-o", tmp_path / "o.png", *FAST], capsys)
    line = _one_error_line(err)
    assert code == 2 and "crop it to a less extreme aspect ratio" in line


def test_wide_image_works_at_the_size_named(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    # The advice is right: at the --size the message names, the short side is exactly 16 px.
    from styletransfer.pipeline import load_checked
    from styletransfer.presets import SEED_CONTENT_LAYERS, SEED_STYLE_LAYERS

    wide = tmp_path / "wide.png"
    Image.fromarray(_noise(10, 4000)).save(wide)
    assert load_checked(wide, 6400, SEED_STYLE_LAYERS + SEED_CONTENT_LAYERS, "style").shape[-2:] == (16, 6400)
    with pytest.raises(ValueError, match="use size 6400"):
        load_checked(wide, 6399, SEED_STYLE_LAYERS + SEED_CONTENT_LAYERS, "style")


# --- Odd but valid images: stylised --------------------------------------------------------------


def _cmyk_jpeg(path: Path) -> None:
    Image.new("RGB", (24, 16), (200, 100, 50)).convert("CMYK").save(path, "JPEG", quality=95)


def _palette_with_transparency(path: Path) -> None:
    im = Image.fromarray(_noise(16, 24)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    im.info["transparency"] = 0
    im.save(path, transparency=0)


#: name -> (file name, writer, expected output (width, height) at --size 32)
ODD: dict[str, tuple[str, Callable[[Path], None], tuple[int, int]]] = {
    "1x1": ("dot.png", lambda p: Image.new("RGB", (1, 1), (90, 120, 200)).save(p), (32, 32)),
    "8x8": ("small.png", lambda p: Image.fromarray(_noise(8, 8)).save(p), (32, 32)),
    "16-bit-rgb-png": ("deep.png", lambda p: p.write_bytes(_rgb48_png(16, 24)), (32, 21)),
    "I;16-greyscale-png": (
        "grey16.png",
        lambda p: Image.fromarray(np.random.default_rng(3).integers(0, 65536, (16, 24)).astype(np.uint16)).save(p),
        (32, 21),
    ),
    "cmyk-jpeg": ("cmyk.jpg", _cmyk_jpeg, (32, 21)),
    "palette-with-transparency": ("pal.png", _palette_with_transparency, (32, 21)),
    "LA-png": ("la.png", lambda p: Image.fromarray(_noise(16, 24)).convert("LA").save(p), (32, 21)),
    "RGBA-png": ("rgba.png", lambda p: Image.fromarray(_noise(16, 24)).convert("RGBA").save(p), (32, 21)),
    "greyscale-jpeg": ("grey.jpg", lambda p: Image.fromarray(_noise(16, 24)).convert("L").save(p), (32, 21)),
    "bilevel-png": ("bw.png", lambda p: Image.fromarray(_noise(16, 24)).convert("1").save(p), (32, 21)),
    "float-tiff": (
        "float.tiff",
        lambda p: Image.fromarray(np.random.default_rng(4).random((16, 24), dtype=np.float32), "F").save(p),
        (32, 21),
    ),
    "webp": ("in.webp", lambda p: Image.fromarray(_noise(16, 24)).save(p), (32, 21)),
    "bmp": ("in.bmp", lambda p: Image.fromarray(_noise(16, 24)).save(p), (32, 21)),
    "png-named-jpg": ("really-a-png.jpg", lambda p: Image.fromarray(_noise(16, 24)).save(p, "PNG"), (32, 21)),
    "spaces-and-unicode-in-path": ("my phötö ✓.png", lambda p: Image.fromarray(_noise(16, 24)).save(p), (32, 21)),
}


@pytest.mark.parametrize("case", list(ODD))
def test_odd_image_is_stylised(
    case: str, tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, write, size = ODD[case]
    odd = tmp_path / name
    write(odd)
    _, style = tiny_pair
    out = tmp_path / "out.png"
    code, err = _cli([odd, style, "-o", out, *FAST, "-q"], capsys)
    assert code == 0, err
    with Image.open(out) as im:  # an alpha channel is kept (issue 5's transparency control)
        assert im.size == size and im.mode == (
            "RGBA" if case in ("palette-with-transparency", "LA-png", "RGBA-png") else "RGB"
        )
    assert err == ""


def test_odd_image_as_style(tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The same loader reads the style image: a 1x1 style works too.
    content, _ = tiny_pair
    dot = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (250, 200, 10)).save(dot)
    code, err = _cli([content, dot, "-o", tmp_path / "out.png", *FAST, "-q"], capsys)
    assert code == 0, err


def test_animated_gif_uses_its_first_frame_with_a_notice(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = [Image.fromarray(_noise(16, 24, seed)) for seed in range(3)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    first = tmp_path / "first.png"
    with Image.open(gif) as im:
        assert im.n_frames == 3
        im.convert("RGB").save(first)
    _, style = tiny_pair
    code, err = _cli([gif, style, "-o", tmp_path / "a.png", *FAST], capsys)
    assert code == 0
    notes = [line for line in err.splitlines() if "note:" in line]
    assert notes == [f"styletransfer: note: {gif}: an animation; using its first frame"]
    assert _cli([first, style, "-o", tmp_path / "b.png", *FAST, "-q"], capsys)[0] == 0
    a, b = (np.asarray(Image.open(tmp_path / n)) for n in ("a.png", "b.png"))
    assert np.array_equal(a, b)


def test_exif_rotated_jpeg_is_stylised_upright(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arr = np.zeros((16, 32, 3), np.uint8)
    arr[:, :16] = 255  # stored: left half white; EXIF 6 turns it 90 degrees clockwise: top half white
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6
    rotated = tmp_path / "rotated.jpg"
    im.save(rotated, exif=exif, quality=100)
    _, style = tiny_pair
    out = tmp_path / "out.png"
    assert _cli([rotated, style, "-o", out, *FAST, "-q"], capsys)[0] == 0
    result = np.asarray(Image.open(out), dtype=np.float32)
    assert result.shape == (32, 16, 3)  # portrait
    assert result[:16].mean() > result[16:].mean() + 100


# --- Outputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("out.gif", "unsupported output extension '.gif'; use one of"),
        ("out", "unsupported output extension '(none)'"),
        ("nodir/out.png", "the directory {tmp}/nodir does not exist; create it or choose another path"),
        ("folder.png", "is a directory; give a file name"),
    ],
    ids=["unsupported-extension", "no-extension", "missing-directory", "output-is-a-directory"],
)
def test_bad_output_path(
    output: str, words: str, tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "folder.png").mkdir()
    content, style = tiny_pair
    code, err = _cli([content, style, "-o", tmp_path / output, *FAST], capsys)
    line = _one_error_line(err)
    assert code == 2 and str(tmp_path / output) in line and words.format(tmp=tmp_path) in line


def test_read_only_output_directory(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    content, style = tiny_pair
    argv = [content, style, "-o", locked / "out.png", *FAST]
    try:
        if os.access(locked, os.W_OK):  # root (as in CI): run the command without root's power to write anywhere
            code, err = _without_dac_override(argv)
        else:
            code, err = _cli(argv, capsys)
        line = _one_error_line(err)
        assert code == 2 and f"cannot write in {locked} (permission denied); choose another path" in line
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def _without_dac_override(argv: list[object]) -> tuple[int, str]:
    """The CLI in a child process that has dropped the capabilities that let root ignore file permissions.

    ``CAP_DAC_OVERRIDE`` (1) and ``CAP_DAC_READ_SEARCH`` (2) leave the bounding set
    (``prctl(PR_CAPBSET_DROP)``), so the child, still uid 0, is held to the
    owner's permission bits like any user.
    """
    import ctypes
    import subprocess
    import sys

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24

    def drop() -> None:
        for capability in (1, 2):
            if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    probe = subprocess.run([sys.executable, "-c", ""], preexec_fn=drop, check=False)
    if probe.returncode != 0:
        pytest.skip("root here cannot drop CAP_DAC_OVERRIDE (no CAP_SETPCAP)")
    child = subprocess.run(
        [sys.executable, "-m", "styletransfer", *map(str, argv)],
        preexec_fn=drop,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return child.returncode, child.stderr


def test_unwritable_output_directory_is_refused_before_the_run(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same refusal where chmod cannot stop the test's user (root): the CLI asks os.access.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path / "locked" else real_access(p, mode))
    (tmp_path / "locked").mkdir()
    content, style = tiny_pair
    code, err = _cli([content, style, "-o", tmp_path / "locked" / "out.png", *FAST], capsys)
    assert code == 2 and f"cannot write in {tmp_path / 'locked'} (permission denied)" in _one_error_line(err)
    assert "step" not in err and not (tmp_path / "locked" / "out.png").exists()  # refused before the first step


@pytest.mark.parametrize("which", ["content", "style", "init", "symlink-to-content"])
def test_output_equal_to_an_input_is_refused(
    which: str, tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    init = tmp_path / "start.png"
    Image.fromarray(_noise(48, 64)).save(init)
    link = tmp_path / "link.png"
    link.symlink_to(content)
    target = {"content": content, "style": style, "init": init, "symlink-to-content": link}[which]
    before = target.read_bytes()
    code, err = _cli([content, style, "-o", target, "--init", init, *FAST], capsys)
    assert code == 2 and "would overwrite the input image" in _one_error_line(err)
    assert target.read_bytes() == before


def test_existing_output_is_kept_when_the_run_fails(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, _ = tiny_pair
    out = tmp_path / "out.png"
    out.write_bytes(b"an earlier result")
    broken = tmp_path / "broken.png"
    broken.write_bytes(_encoded(Image.fromarray(_noise(64, 64)), "PNG")[:200])
    code, _err = _cli([content, broken, "-o", out, *FAST], capsys)
    assert code == 2 and out.read_bytes() == b"an earlier result"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.png")] == []  # no temporary left


def test_snapshots_never_overwrite_an_existing_file(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    unrelated = tmp_path / "out.step00004.png"
    unrelated.write_bytes(b"someone else's file")
    argv = [content, style, "-o", tmp_path / "out.png", *FAST, "--steps", 4, "--save-every", 2]
    code, err = _cli(argv, capsys)
    line = _one_error_line(err)
    assert code == 2 and f"{unrelated}: already exists and --save-every 2 would overwrite it" in line
    assert unrelated.read_bytes() == b"someone else's file" and not (tmp_path / "out.png").exists()
    # A file that no snapshot of this run would take is no obstacle (step 3 is not a multiple of 2).
    unrelated.rename(tmp_path / "out.step00003.png")
    assert _cli([*argv, "-q"], capsys)[0] == 0
    assert (tmp_path / "out.step00003.png").read_bytes() == b"someone else's file"
    assert sorted(p.name for p in tmp_path.glob("out.step*")) == [
        "out.step00002.png",
        "out.step00003.png",
        "out.step00004.png",
    ]


@pytest.mark.parametrize(
    ("log", "words"),
    [
        ("nodir/log.csv", "the directory {tmp}/nodir does not exist"),
        ("{content}", "the log would overwrite the input image"),
        ("out.png", "the log would be written over the output"),
    ],
    ids=["log-in-missing-directory", "log-equal-to-an-input", "log-equal-to-the-output"],
)
def test_bad_log_path(
    log: str, words: str, tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    before = content.read_bytes()
    path = log.format(content=content) if "{" in log else str(tmp_path / log)
    code, err = _cli([content, style, "-o", tmp_path / "out.png", "--log", path, *FAST], capsys)
    line = _one_error_line(err)
    assert code == 2 and f"--log {path}" in line and words.format(tmp=tmp_path) in line
    assert content.read_bytes() == before


# --- Options ------------------------------------------------------------------------------------


def _option_cases(cases: list[tuple[list[str], str]]) -> list[object]:
    return [pytest.param(option, words, id=" ".join(option)) for option, words in cases]


@pytest.mark.parametrize(
    ("option", "words"),
    _option_cases(
        [
            (["--steps", "0"], "argument --steps: must be at least 1, not 0"),
            (["--steps", "-5"], "argument --steps: must be at least 1, not -5"),
            (["--steps", "ten"], "argument --steps: 'ten' is not a whole number"),
            (["--size", "0"], "argument --size: must be at least 1, not 0"),
            (["--size", "-3"], "argument --size: must be at least 1, not -3"),
            (["--style-weight", "nan"], "argument --style-weight: must be finite, not nan"),
            (["--content-weight", "inf"], "argument --content-weight: must be finite, not inf"),
            (["--tv-weight=-inf"], "argument --tv-weight: must be finite, not -inf"),
            (["--lr", "nan"], "argument --lr: must be finite, not nan"),
            (["--style-weight", "-1"], "argument --style-weight: must be >= 0, not -1"),
            (["--preset", "nope"], "argument --preset: invalid choice: 'nope'"),
            (["--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
            (["--seed", "-1"], "argument --seed: must be from 0 to 2**64 - 1, not -1"),
            (["--seed", str(2**64)], "argument --seed: must be from 0 to 2**64 - 1"),
            (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        ]
    ),
)
def test_impossible_option_is_one_line_exit_2(
    option: list[str], words: str, tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    code, err = _cli([content, style, "-o", tmp_path / "o.png", *FAST, *option], capsys)
    line = _one_error_line(err)
    assert code == 2 and words in line and line.endswith("(see 'styletransfer --help')")


def test_missing_output_option(tiny_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    content, style = tiny_pair
    code, err = _cli([content, style], capsys)
    assert code == 2 and "the following arguments are required: -o/--output" in _one_error_line(err)


@pytest.mark.parametrize(
    ("size", "words"),
    [
        (
            8,
            "--size 8 is too small: the layers in use (down to block5_conv2) need at least 16 pixels on each side; use --size 16 or more",
        ),
        (10**6, f"argument --size: must be at most {MAX_SIZE}, not 1000000"),
    ],
    ids=["size-8-below-the-minimum", "size-1000000-absurd"],
)
def test_size_limits(
    size: int, words: str, tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    code, err = _cli([content, style, "-o", tmp_path / "o.png", *FAST, "--size", size], capsys)
    assert code == 2 and words in _one_error_line(err)
    assert not (tmp_path / "o.png").exists()


def test_minimum_size_runs(tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 16 px is the smallest size the seed's layers take; a 64x48 content becomes 16x12, which
    # has a side under 16 and is refused, a square content works.
    square = tmp_path / "square.png"
    Image.fromarray(_noise(20, 20)).save(square)
    content, _ = tiny_pair
    code, err = _cli([content, square, "-o", tmp_path / "o.png", *FAST, "--size", 16], capsys)
    assert code == 2 and f"{content}: at --size 16 this 64x48 image becomes 16x12 pixels" in _one_error_line(err)
    code, err = _cli([square, square, "-o", tmp_path / "o.png", *FAST, "--size", 16, "-q"], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "o.png").size == (16, 16)


def test_minimum_size_follows_the_layers_in_use(tiny_pair: tuple[Path, Path]) -> None:
    from styletransfer.vgg_layers import min_input_side

    assert min_input_side(["block1_conv1"]) == 1
    assert min_input_side(["block3_conv1", "block2_conv2"]) == 4
    assert min_input_side(["block5_conv2", "block1_conv1"]) == 16
    assert min_input_side(["block5_pool"]) == 32
    content, style = tiny_pair
    # Shallow layers take small images; block1-2 only need 2 px.
    image = stylize(
        content,
        style,
        preset="tutorial",
        size=4,
        steps=1,
        style_layers=["block1_conv1"],
        content_layers=["block2_conv1"],
        device="cpu",
    )
    assert image.size == (4, 3)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"style_layers": ["block9_conv1"]}, "unknown VGG19 layer 'block9_conv1'; known layers: block1_conv1"),
        ({"content_layers": ["conv5_2"]}, "unknown VGG19 layer 'conv5_2'"),
        ({"style_layers": [], "content_layers": []}, "at least one content or style layer is needed"),
        ({"preset": "nope"}, "unknown preset 'nope'; choose from fast, quality, tutorial"),
        ({"device": "tpu"}, "unknown device 'tpu'; choose from auto, cpu, cuda, mps"),
        ({"style_weight": float("nan")}, "style_weight: must be finite, not nan"),
        ({"lr": float("inf")}, "lr: must be finite, not inf"),
        ({"seed": -1}, "seed: must be from 0 to 2**64 - 1, not -1"),
    ],
    ids=[
        "unknown-style-layer",
        "unknown-content-layer",
        "no-layers",
        "unknown-preset",
        "unknown-device",
        "nan-weight",
        "inf-lr",
        "negative-seed",
    ],
)
def test_api_refuses_bad_options_before_any_work(
    kwargs: dict[str, object], words: str, tiny_pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import styletransfer.pipeline.inputs

    monkeypatch.setattr(styletransfer.pipeline.inputs, "to_tensor", lambda *a: pytest.fail("an image was read"))
    content, style = tiny_pair
    with pytest.raises(ValueError, match=re.escape(words)):
        stylize(content, style, size=32, steps=1, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_missing_accelerator_is_one_line_exit_2(
    device: str, tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    available = torch.cuda.is_available() if device == "cuda" else torch.backends.mps.is_available()
    if available:
        pytest.skip(f"this machine has {device}")
    content, style = tiny_pair
    code, err = _cli([content, style, "-o", tmp_path / "o.png", *FAST, "--device", device], capsys)
    line = _one_error_line(err)
    assert code == 2 and f"--device {device}:" in line and "use --device cpu" in line


@pytest.mark.parametrize(
    ("init", "words"),
    [
        ("contnet", "--init contnet: no such file; use content, noise, style or the path of an image"),
        ("{bad}", "not a readable image"),
    ],
    ids=["init-typo", "init-not-an-image"],
)
def test_bad_init(
    init: str, words: str, tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not a picture")
    content, style = tiny_pair
    code, err = _cli([content, style, "-o", tmp_path / "o.png", *FAST, "--init", init.format(bad=bad)], capsys)
    assert code == 2 and words in _one_error_line(err)


@pytest.mark.parametrize(
    ("make", "words"),
    [(None, "weights file not found"), (b"\x00garbage" * 10, "not a readable weights file")],
    ids=["weights-missing", "weights-garbage"],
)
def test_bad_weights_file(
    make: bytes | None, words: str, tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "vgg.bin"
    if make is not None:
        weights.write_bytes(make)
    content, style = tiny_pair
    code, err = _cli([content, style, "-o", tmp_path / "o.png", *FAST, "--weights", weights], capsys)
    line = _one_error_line(err)
    assert code == 2 and str(weights) in line and words in line


def test_nan_array_input_is_refused(tmp_path: Path) -> None:
    # The API takes arrays and tensors; clamping would keep a NaN, so they are refused.
    from styletransfer.images import ImageError, save_image, to_tensor

    arr = np.full((8, 8, 3), 0.5, np.float32)
    arr[2, 3, 1] = np.nan
    with pytest.raises(ImageError, match="an image array has NaN or infinite values"):
        to_tensor(arr)
    with pytest.raises(ImageError, match="an image tensor has NaN or infinite values"):
        to_tensor(torch.full((3, 4, 4), float("inf")))
    with pytest.raises(ImageError, match="refused, the image to write has NaN"):
        save_image(torch.full((1, 3, 4, 4), float("nan")), tmp_path / "never.png")
    assert list(tmp_path.iterdir()) == []


def test_loss_command_with_a_bad_image(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tiny_pair
    code, err = _cli(["loss", content, style, tmp_path / "missing.png", "--size", 32], capsys)
    assert code == 2 and f"{tmp_path / 'missing.png'}: no such file" in _one_error_line(err)
    code, err = _cli(["loss", content, style, content, "--size", 4], capsys)
    assert code == 2 and "--size 4 is too small" in _one_error_line(err)


# --- --debug and runtime failures ---------------------------------------------------------------


@pytest.mark.parametrize("command", ["main", "loss", "demo", "layers"])
def test_debug_shows_the_traceback_only_when_asked(
    command: str,
    tiny_pair: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    content, style = tiny_pair
    missing = tmp_path / "missing.png"
    argv: list[object] = {
        "main": [content, missing, "-o", tmp_path / "o.png", *FAST],
        "loss": ["loss", content, style, missing, "--size", 32],
        "demo": ["demo", "-o", tmp_path / "o.png", *FAST, "--weights", tmp_path / "none.bin"],
        "layers": ["layers"],
    }[command]
    if command == "layers":  # nothing a user can get wrong here: an unexpected failure, exit 1
        import styletransfer.inspection

        def broken() -> list[dict[str, object]]:
            raise RuntimeError("the table\nis broken")

        monkeypatch.setattr(styletransfer.inspection, "layers", broken)
    expected = 1 if command == "layers" else 2
    code, err = _cli(argv, capsys)
    line = _one_error_line(err)
    assert code == expected
    if command == "layers":
        assert line == (
            "styletransfer: error: internal error: RuntimeError: the table is broken (run again with --debug for the traceback)"
        )
    code, err = _cli([*argv, "--debug"], capsys)
    assert code == expected
    assert err.startswith("Traceback (most recent call last):") and err.strip().splitlines()[-1] == line


def test_debug_is_an_option_of_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    from styletransfer.cli import COMMANDS

    for argv in [["--help"]] + [[name, "--help"] for name in COMMANDS]:
        with pytest.raises(SystemExit):
            main(argv)
        assert "--debug" in capsys.readouterr().out, argv


def test_unexpected_error_during_a_run_is_exit_1(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import styletransfer.runner

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB\nsee the docs")

    monkeypatch.setattr(styletransfer.runner, "optimize", out_of_memory)
    content, style = tiny_pair
    code, err = _cli([content, style, "-o", tmp_path / "o.png", *FAST], capsys)
    assert code == 1
    assert "RuntimeError: CUDA out of memory. Tried to allocate 20.00 GiB see the docs" in _one_error_line(err)
    assert not (tmp_path / "o.png").exists()


def test_a_failing_snapshot_write_does_not_cost_the_run(
    tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import styletransfer.observers as observers

    real = observers.save_image
    attempts: list[str] = []

    def full_disk_for_snapshots(image, path):  # type: ignore[no-untyped-def]
        if ".step" in str(path):
            attempts.append(str(path))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(image, path)

    monkeypatch.setattr(observers, "save_image", full_disk_for_snapshots)  # the snapshots' writes
    content, style = tiny_pair
    out = tmp_path / "out.png"
    code, err = _cli([content, style, "-o", out, *FAST, "--steps", 3, "--save-every", 1, "-q"], capsys)
    assert code == 0 and out.is_file()
    assert len(attempts) == 1  # after the first failure the run goes on without snapshots
    notes = [line for line in err.splitlines() if "note:" in line]
    assert len(notes) == 1 and "cannot write the snapshot" in notes[0] and "No space left on device" in notes[0]


@pytest.mark.parametrize(
    ("role", "extra"),
    [
        ("content", []),
        ("style", []),
        ("init", ["--init", "{fifo}"]),
        ("masks", ["--masks", "{fifo}"]),
        ("style_masks", ["--style-masks", "{fifo}"]),
        ("fine_style", ["--fine-style", "{fifo}"]),
        ("weights", ["--weights", "{fifo}"]),
    ],
)
def test_a_fifo_as_any_input_is_refused_without_opening_it(
    role: str, extra: list[str], tiny_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A FIFO would block the reader until a writer comes: refused from ``stat``, one line, exit 2."""
    from tests.fifos import WatchedFifo

    content, style = tiny_pair
    with WatchedFifo(tmp_path / f"fifo-{role}.png") as fifo:
        inputs = [fifo.path if role == "content" else content, fifo.path if role == "style" else style]
        argv = [*inputs, "-o", tmp_path / "o.png", *FAST, *(a.format(fifo=fifo.path) for a in extra)]
        code, err = _cli(argv, capsys)
        assert fifo.readers == 0
    line = _one_error_line(err)
    assert code == 2 and f"{fifo.path}: is a FIFO (named pipe), not a regular file" in line, line
    assert not (tmp_path / "o.png").exists()


def test_a_device_as_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``/dev/zero`` would be read without end; a character device is refused like a FIFO."""
    code, err = _cli(["/dev/zero", "/dev/zero", "-o", tmp_path / "o.png", *FAST], capsys)
    assert code == 2 and "/dev/zero: is a character device, not a regular file" in _one_error_line(err)
    code, err = _cli([tmp_path / "none.png", "/dev/null", "-o", tmp_path / "o.png", *FAST], capsys)
    assert code == 2 and "no such file" in _one_error_line(err)
