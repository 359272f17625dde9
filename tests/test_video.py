"""``styletransfer video``: DIS flow on clips whose true flow is known (a pan, a zoom), the issue's targets, resuming."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styletransfer.cli import main
from tests.clips import (
    known_warping_error,
    occlusion_frames,
    pan_frames,
    pan_zoom_clip,
    read_frames,
    small_style,
    static_frames,
    true_mask,
    write_frames,
    write_mp4,
)

pytest.importorskip("cv2")
av = pytest.importorskip("av")
pytestmark = pytest.mark.usefixtures("one_thread")

#: The issue's targets are measured at 60 evaluations for the first frame (and for every frame of the baseline),
#: and the default third of them, 20, for each later frame.
STEPS, FRAME_STEPS = 60, 20


@pytest.fixture(scope="module")
def style(tmp_path_factory) -> Path:
    return small_style(tmp_path_factory.mktemp("style"), 64, 50)


#: The clip of the targets: 3 frames of a pan (2 px right, 1 down a frame), then 3 of a zoom pulling back 6 % a frame.
CLIP = {"pan": 3, "zoom": 3, "width": 64, "height": 48}


@pytest.fixture(scope="module")
def pan(tmp_path_factory, style) -> dict:
    """The pan-and-zoom clip stylised with the temporal loss (through the CLI) and without it (the baseline)."""
    root = tmp_path_factory.mktemp("pan")
    clip = pan_zoom_clip(**CLIP)
    source = write_frames(clip.frames, root / "in")
    common = ["--style", str(style), "--size", "64", "--steps", str(STEPS), "--device", "cpu", "-q"]
    code = main(["video", str(source), "-o", str(root / "temporal"), *common, "--metrics", str(root / "t.json")])
    assert code == 0
    code = main(
        [
            "video",
            str(source),
            "-o",
            str(root / "independent"),
            "--no-temporal",
            *common,
            "--metrics",
            str(root / "i.json"),
        ]
    )
    assert code == 0
    return {
        "root": root,
        "clip": clip,
        "source": source,
        "temporal": read_frames(root / "temporal"),
        "independent": read_frames(root / "independent"),
        "metrics": json.loads((root / "t.json").read_text()),
        "baseline_metrics": json.loads((root / "i.json").read_text()),
    }


def test_dis_end_point_error_on_the_pan_is_below_half_a_pixel():
    from styletransfer.video.flow import flow_and_mask

    frames = [f.astype(np.float32) / 255 for f in pan_frames(4, 64, 48)]
    known = true_mask(48, 64)
    for prev, cur in itertools.pairwise(frames):
        backward, mask = flow_and_mask(prev, cur)
        epe = np.sqrt(((backward - np.array([2.0, 1.0])) ** 2).sum(-1))[known].mean()
        assert epe < 0.5
        assert mask[~known].max() == 0  # the new strip is never trusted
        assert mask[known].mean() > 0.8


def test_dis_end_point_error_on_the_zoom_is_below_half_a_pixel():
    from styletransfer.video.flow import flow_and_mask

    clip = pan_zoom_clip(**CLIP)
    frames = [f.astype(np.float32) / 255 for f in clip.frames]
    for t, (prev, cur) in enumerate(itertools.pairwise(frames)):
        backward, mask = flow_and_mask(prev, cur)
        known = clip.masks[t]
        epe = np.sqrt(((backward - clip.flows[t]) ** 2).sum(-1))[known].mean()
        print(f"pair {t + 1}-{t + 2}: EPE {epe:.3f} px, certainty on the new ring {mask[~known].mean():.2f}")
        assert epe < 0.5
        # DIS underestimates the flow at the border, so part of the new ring passes the check; most does not
        assert mask[~known].mean() < 0.5
        assert mask[known].mean() > 0.7


def test_temporal_video_flickers_far_less_at_the_same_style_loss(pan):
    temporal = known_warping_error(pan["temporal"], pan["clip"])
    independent = known_warping_error(pan["independent"], pan["clip"])
    ratio = temporal / independent
    print(f"warping error: temporal {temporal:.5f}, independent {independent:.5f}, ratio {ratio:.3f}")
    assert ratio <= 0.3
    style_ratio = pan["metrics"]["mean_style_loss"] / pan["baseline_metrics"]["mean_style_loss"]
    print(f"style loss ratio {style_ratio:.3f}")
    assert style_ratio <= 1.2


def test_metrics_hold_each_frame(pan):
    frames = pan["metrics"]["frames"]
    assert [f["frame"] for f in frames] == [1, 2, 3, 4, 5, 6]
    assert frames[0]["warping_error"] is None and frames[0]["evaluations"] == STEPS
    assert all(f["evaluations"] == FRAME_STEPS and f["warping_error"] >= 0 and f["seconds"] > 0 for f in frames[1:])
    assert pan["metrics"]["mean_warping_error"] < pan["baseline_metrics"]["mean_warping_error"]


def test_a_stopped_video_continues_from_the_last_finished_frame(style, tmp_path):
    from styletransfer.video import stylize_video

    source = write_frames(pan_frames(4, 32, 24), tmp_path / "in")
    options = {"size": 32, "steps": 6, "device": "cpu"}
    unbroken = stylize_video(source, style, tmp_path / "unbroken", **options)
    assert unbroken.status == "complete" and unbroken.done_now == 4
    out = tmp_path / "out"
    seen: list = []
    first = stylize_video(
        source, style, out, should_stop=lambda: len(seen) >= 2, on_frame=lambda r, n: seen.append(r), **options
    )
    assert first.status == "interrupted" and first.done_now == 2 and not out.exists()
    second = stylize_video(source, style, out, **options)
    assert second.status == "complete" and second.done_now == 2
    assert [r.frame for r in second.records] == [1, 2, 3, 4]
    for a, b in zip(read_frames(out), read_frames(tmp_path / "unbroken"), strict=True):
        assert np.array_equal(a, b)  # the same pixels as the unbroken run


def test_a_static_clip_does_not_drift(style, tmp_path):
    from styletransfer.video import stylize_video

    source = write_frames(static_frames(20, 48, 32), tmp_path / "static")
    result = stylize_video(source, style, tmp_path / "out", size=48, steps=10, frame_steps=3, device="cpu")
    assert result.status == "complete"
    weights = np.array([0.299, 0.587, 0.114])
    luma = [float((f.astype(np.float64) @ weights).mean()) for f in read_frames(tmp_path / "out")]
    drift = max(abs(y - luma[0]) for y in luma)
    print(f"luminance drift over 20 static frames: {drift:.3f} / 255")
    assert drift < 2.0


def test_video_file_in_and_out_keeps_the_audio(style, tmp_path, capsys):
    source = write_mp4(pan_frames(3, 64, 48), tmp_path / "pan.mp4")
    out = tmp_path / "styled.mp4"
    args = [
        "video",
        str(source),
        "-o",
        str(out),
        "--style",
        str(style),
        "--size",
        "64",
        "--steps",
        "2",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    with av.open(str(out)) as container:
        assert container.streams.audio, "the audio was not copied"
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = list(container.decode(stream))
    assert len(frames) == 3 and (frames[0].width, frames[0].height) == (64, 48)
    assert (tmp_path / "styled.mp4.work" / "frames" / "frame_00003.png").is_file()
    assert "wrote" in capsys.readouterr().err


def test_missing_input_is_a_usage_error(style, tmp_path, capsys):
    assert main(["video", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "o"), "--style", str(style)]) == 2
    assert "nope.mp4: no such file" in capsys.readouterr().err


def test_long_term_masks_keep_each_pixel_for_the_nearest_frame_that_saw_it():
    from styletransfer.video.flow import long_term_masks

    c1 = np.array([1, 0, 0, 1, 0], np.float32)  # certainty of frame t-1 -> t
    c2 = np.array([1, 1, 0, 0, 0], np.float32)  # t-2 -> t
    c3 = np.array([1, 1, 1, 0, 0], np.float32)  # t-3 -> t
    long = long_term_masks([c1, c2, c3])
    # by hand: c_long_j = max(c_j - sum_{k<j} c_k, 0)
    assert long[0].tolist() == [1, 0, 0, 1, 0]
    assert long[1].tolist() == [0, 1, 0, 0, 0]  # c2 - c1 = [0, 1, 0, -1, 0]
    assert long[2].tolist() == [0, 0, 1, 0, 0]  # c3 - c1 - c2 = [-1, 0, 1, -1, 0]


def _true_occlusion_flows(frames: list[np.ndarray], block: int, speed: int):
    """A flow map with the occlusion clip's true flows: the background is still (flow 0), certain where both see it."""
    index = {f.tobytes(): t for t, f in enumerate(frames)}
    h, w = frames[0].shape[:2]

    def background(t: int) -> np.ndarray:
        mask = np.ones((h, w), np.float32)
        mask[:, speed * t : speed * t + block] = 0
        return mask

    def flows(pairs):
        found = []
        for a, b in pairs:
            s, t = (index[np.rint(x * 255).astype(np.uint8).tobytes()] for x in (a, b))
            found.append((np.zeros((h, w, 2), np.float32), background(s) * background(t)))
        return found

    return flows


def test_long_term_consistency_brings_back_what_a_passing_bar_hid(style, tmp_path):
    """A bar slides over a still background: the strip it uncovers in frame t was last seen in frame t - 3.

    With ``long_term=3`` that strip starts from, and is held to, frame t - 3's stylisation; without it the strip
    is free (the previous frame never saw it).  Measured with the true flows, so that it is long-term's doing.
    """
    from styletransfer.video import stylize_video

    frames, revealed = occlusion_frames(6, 48, 32, block=8, speed=4)
    source = write_frames(frames, tmp_path / "in")
    flows = _true_occlusion_flows(frames, 8, 4)
    errors = {}
    for j in (0, 3):
        out = tmp_path / f"long{j}"
        result = stylize_video(
            source, style, out, size=48, steps=40, frame_steps=15, long_term=j, flows=flows, device="cpu"
        )
        assert result.status == "complete"
        o = [f.astype(np.float64) / 255 for f in read_frames(out)]
        errors[j] = float(np.mean([((o[t] - o[t - 3]) ** 2).sum(-1)[revealed[t]].mean() for t in range(3, 6)]))
    print(f"uncovered strip against the frame that last saw it: long-term {errors[3]:.5f}, without {errors[0]:.5f}")
    assert errors[3] < 0.7 * errors[0]


def test_long_term_runs_with_dis_flows_from_the_command_line(style, tmp_path):
    frames, _ = occlusion_frames(4, 48, 32)
    source = write_frames(frames, tmp_path / "in")
    args = ["video", str(source), "-o", str(tmp_path / "out"), "--style", str(style), "--size", "48"]
    assert main([*args, "--steps", "4", "--long-term", "3", "--device", "cpu", "-q"]) == 0
    assert len(read_frames(tmp_path / "out")) == 4
    state = json.loads((tmp_path / "out.work" / "settings.json").read_text())
    assert state["long_term"] == 3


def test_long_term_out_of_range_is_a_usage_error(style, tmp_path, capsys):
    source = write_frames(static_frames(2, 48, 32), tmp_path / "in")
    args = ["video", str(source), "-o", str(tmp_path / "o"), "--style", str(style), "--long-term", "11"]
    assert main(args) == 2
    assert "--long-term must be between 0 and 10, not 11" in capsys.readouterr().err


def test_several_videos_into_one_directory(style, tmp_path, capsys):
    a = write_frames(pan_frames(3, 32, 24), tmp_path / "a")
    b = write_mp4(pan_zoom_clip(1, 2, 32, 24).frames, tmp_path / "b.mp4")
    out = tmp_path / "out"
    args = ["video", str(a), str(b), "-o", str(out), "--style", str(style), "--size", "32", "--steps", "2"]
    assert main([*args, "--device", "cpu", "--metrics", str(tmp_path / "m")]) == 0
    assert len(read_frames(out / "a")) == 3 and (out / "b.mp4").is_file()
    assert (out / "a.work" / "frames").is_dir() and (out / "b.mp4.work" / "frames").is_dir()
    assert json.loads((tmp_path / "m" / "b.json").read_text())["frames"][2]["frame"] == 3
    err = capsys.readouterr().err
    assert "a frame 3/3" in err and "b.mp4 frame 1/3" in err
    assert main([*args, "--device", "cpu"]) == 0  # everything done: nothing stylised again
    assert "(3 frames, 0 stylised now)" in capsys.readouterr().err


def test_two_inputs_with_one_name_are_a_usage_error(style, tmp_path, capsys):
    a = write_frames(static_frames(2, 48, 32), tmp_path / "x" / "clip")
    b = write_frames(static_frames(2, 48, 32), tmp_path / "y" / "clip")
    assert main(["video", str(a), str(b), "-o", str(tmp_path / "o"), "--style", str(style)]) == 2
    assert "two inputs are called clip" in capsys.readouterr().err


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    )


def _video(args: list[str], capsys) -> tuple[int, str]:
    code = main(["video", *args, "--size", "32", "--steps", "1", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0 or (err.count("\n") == 1 and "Traceback" not in err), err
    return code, err


@pytest.mark.parametrize("bad", ["bomb", "fifo", "text", "other-size"])
def test_a_frame_folder_gets_every_image_check(style, tmp_path, capsys, bad):
    """A frame folder's images are read like any input: a bomb, a damaged file, a FIFO, a stray size."""
    from tests.fifos import WatchedFifo

    source = write_frames(static_frames(3, 48, 32), tmp_path / "in")
    odd = source / "frame_00002.png"
    if bad != "fifo":
        odd.unlink()
    if bad == "bomb":
        odd.write_bytes(_png_claiming(100_000, 100_000))
    elif bad == "text":
        odd.write_text("not a frame")
    elif bad == "other-size":
        Image.new("RGB", (40, 32)).save(odd)
    with WatchedFifo(source / "frame_00009.png") if bad == "fifo" else open(__file__) as fifo:
        code, err = _video([str(source), "-o", str(tmp_path / "o"), "--style", str(style)], capsys)
    expected = {
        "bomb": f"{odd}: refused, the image has more than the 89478485 pixels",
        "text": f"{odd}: not a readable image: a text file",
        "other-size": "the frames differ in size (frame_00001.png is 48x32, frame_00002.png 40x32)",
    }
    if bad == "fifo":  # not a frame file: the other frames make the clip, and nobody opened the FIFO
        assert code == 0 and fifo.readers == 0 and len(read_frames(tmp_path / "o")) == 3
    else:
        assert code == 2 and expected[bad] in err, err
        assert not (tmp_path / "o").exists()


def test_a_video_s_header_is_checked_before_decoding(style, tmp_path, capsys, monkeypatch):
    """Frame size (the images' pixel limit), frame count and rate: one line each, exit 2, nothing decoded."""
    import styletransfer.video.io as video_io

    source = write_mp4(pan_frames(4, 32, 24), tmp_path / "pan.mp4")
    args = [str(source), "-o", str(tmp_path / "o.mp4"), "--style", str(style)]
    decoded: list[object] = []
    real = video_io.to_tensor
    monkeypatch.setattr(video_io, "to_tensor", lambda a: decoded.append(a) or real(a))

    monkeypatch.setattr(video_io, "MAX_PIXELS", 32 * 24 - 1)
    code, err = _video(args, capsys)
    assert code == 2 and f"{source}: refused, its 32x24 frames have more than the 767 pixels" in err
    monkeypatch.undo()
    monkeypatch.setattr(video_io, "to_tensor", lambda a: decoded.append(a) or real(a))

    monkeypatch.setattr(video_io, "MAX_FRAMES", 3)
    code, err = _video(args, capsys)
    assert code == 2 and f"{source}: refused, 4 frames is more than the 3 a clip may have" in err
    monkeypatch.setattr(video_io, "MAX_FRAMES", 100)

    fast = write_mp4(pan_frames(2, 32, 24), tmp_path / "fast.mp4", fps=5000)
    code, err = _video([str(fast), "-o", str(tmp_path / "f.mp4"), "--style", str(style)], capsys)
    assert code == 2 and "its frame rate, 5000 frames a second, is not above 0 and at most 1000" in err
    code, err = _video([*args, "--fps", "0"], capsys)
    assert code == 2 and "--fps must be above 0 and at most 1000, not 0" in err
    assert decoded == []


@pytest.mark.parametrize("kind", ["video-file", "frame-folder"])
def test_a_clip_s_frames_are_decoded_one_at_a_time(style, tmp_path, monkeypatch, kind):
    """Only the working-size frames are kept: each full-size frame is gone before the one after next is decoded."""
    import weakref

    import styletransfer.video.io as video_io
    from styletransfer.video import prepare_video

    frames = pan_frames(12, 96, 72)
    source = write_mp4(frames, tmp_path / "pan.mp4") if kind == "video-file" else write_frames(frames, tmp_path / "in")
    decoded: list[weakref.ref] = []
    most = 0

    def spy(real):
        def decode(*args):
            nonlocal most
            frame = real(*args)
            decoded.append(weakref.ref(frame))
            most = max(most, sum(ref() is not None for ref in decoded))
            return frame

        return decode

    monkeypatch.setattr(video_io, "to_tensor", spy(video_io.to_tensor))
    monkeypatch.setattr(video_io, "read_image", spy(video_io.read_image))
    video = prepare_video(source, style, tmp_path / "o.mp4", size=16, steps=1, device="cpu")
    assert len(video.contents) == len(decoded) == 12 and tuple(video.contents[0].shape) == (1, 3, 12, 16)
    assert most <= 2, f"{most} full-size frames held at once"
    assert all(ref() is None for ref in decoded)


def test_a_fifo_as_the_video_is_refused_without_opening_it(style, tmp_path, capsys):
    from tests.fifos import WatchedFifo

    with WatchedFifo(tmp_path / "clip.mp4") as fifo:
        code, err = _video([str(fifo.path), "-o", str(tmp_path / "o.mp4"), "--style", str(style)], capsys)
        assert fifo.readers == 0
    assert code == 2 and f"{fifo.path}: is a FIFO (named pipe), not a regular file" in err
