"""``styletransfer video``: DIS flow on a clip whose true flow is known, the issue's targets, resuming, video files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styletransfer.cli import main
from tests.clips import pan_frames, static_frames, true_mask, true_warping_error, write_frames, write_mp4

pytest.importorskip("cv2")
av = pytest.importorskip("av")

OPTIONS = {"size": 64, "steps": 20, "device": "cpu"}
FRAME_STEPS = 7


def _frames(directory: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(directory.glob("*.png"))]


@pytest.fixture(scope="module")
def style(tmp_path_factory) -> Path:
    from styletransfer.examples import example_path

    path = tmp_path_factory.mktemp("style") / "starry.png"
    with Image.open(example_path("starry_night.jpg")) as im:
        im.resize((64, 50), Image.BILINEAR).save(path)
    return path


@pytest.fixture(scope="module")
def pan(tmp_path_factory, style) -> dict:
    """The 5-frame pan stylised with the temporal loss (through the CLI) and without it (the baseline)."""
    root = tmp_path_factory.mktemp("pan")
    source = write_frames(pan_frames(5, 64, 48), root / "in")
    common = ["--style", str(style), "--size", "64", "--steps", "20", "--device", "cpu", "-q"]
    code = main(
        [
            "video",
            str(source),
            "-o",
            str(root / "temporal"),
            "--frame-steps",
            str(FRAME_STEPS),
            *common,
            "--metrics",
            str(root / "t.json"),
        ]
    )
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
        "source": source,
        "temporal": _frames(root / "temporal"),
        "independent": _frames(root / "independent"),
        "metrics": json.loads((root / "t.json").read_text()),
        "baseline_metrics": json.loads((root / "i.json").read_text()),
    }


def test_dis_end_point_error_on_the_pan_is_below_half_a_pixel():
    from styletransfer.video.flow import flow_and_mask

    frames = [f.astype(np.float32) / 255 for f in pan_frames(4, 64, 48)]
    known = true_mask(48, 64)
    for prev, cur in zip(frames, frames[1:]):
        backward, mask = flow_and_mask(prev, cur)
        epe = np.sqrt(((backward - np.array([2.0, 1.0])) ** 2).sum(-1))[known].mean()
        assert epe < 0.5
        assert mask[~known].max() == 0  # the new strip is never trusted
        assert mask[known].mean() > 0.8


def test_temporal_video_flickers_far_less_at_the_same_style_loss(pan):
    temporal = true_warping_error(pan["temporal"])
    independent = true_warping_error(pan["independent"])
    ratio = temporal / independent
    print(f"warping error: temporal {temporal:.5f}, independent {independent:.5f}, ratio {ratio:.3f}")
    assert ratio <= 0.3
    style_ratio = pan["metrics"]["mean_style_loss"] / pan["baseline_metrics"]["mean_style_loss"]
    print(f"style loss ratio {style_ratio:.3f}")
    assert style_ratio <= 1.2


def test_metrics_hold_each_frame(pan):
    frames = pan["metrics"]["frames"]
    assert [f["frame"] for f in frames] == [1, 2, 3, 4, 5]
    assert frames[0]["warping_error"] is None and frames[0]["evaluations"] == 20
    assert all(f["evaluations"] == FRAME_STEPS and f["warping_error"] >= 0 and f["seconds"] > 0 for f in frames[1:])
    assert pan["metrics"]["mean_warping_error"] < pan["baseline_metrics"]["mean_warping_error"]


def test_a_stopped_video_continues_from_the_last_finished_frame(pan, style, tmp_path):
    from styletransfer.video import stylize_video

    out = tmp_path / "out"
    seen = []

    def stop_after_two() -> bool:
        return len(seen) >= 2

    first = stylize_video(
        pan["source"],
        style,
        out,
        frame_steps=FRAME_STEPS,
        should_stop=stop_after_two,
        on_frame=lambda r, n: seen.append(r),
        **OPTIONS,
    )
    assert first.status == "interrupted" and first.done_now == 2 and not out.exists()
    second = stylize_video(pan["source"], style, out, frame_steps=FRAME_STEPS, **OPTIONS)
    assert second.status == "complete" and second.done_now == 3
    for a, b in zip(_frames(out), pan["temporal"]):
        assert np.array_equal(a, b)  # the same pixels as the unbroken run


def test_a_static_clip_does_not_drift(style, tmp_path):
    from styletransfer.video import stylize_video

    source = write_frames(static_frames(20, 48, 32), tmp_path / "static")
    result = stylize_video(source, style, tmp_path / "out", size=48, steps=10, frame_steps=3, device="cpu")
    assert result.status == "complete"
    weights = np.array([0.299, 0.587, 0.114])
    luma = [float((f.astype(np.float64) @ weights).mean()) for f in _frames(tmp_path / "out")]
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
