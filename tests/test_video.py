"""``styletransfer video``: DIS flow on clips whose true flow is known (a pan, a zoom), the issue's targets, resuming."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styletransfer.cli import main
from tests.clips import (
    known_warping_error,
    pan_frames,
    pan_zoom_clip,
    static_frames,
    true_mask,
    write_frames,
    write_mp4,
)

pytest.importorskip("cv2")
av = pytest.importorskip("av")

#: The issue's targets are measured at 60 evaluations for the first frame (and for every frame of the baseline),
#: and the default third of them, 20, for each later frame.
STEPS, FRAME_STEPS = 60, 20


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: the machine is shared, and two threads on a busy 2-core CPU are slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _frames(directory: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(directory.glob("*.png"))]


@pytest.fixture(scope="module")
def style(tmp_path_factory) -> Path:
    from styletransfer.examples import example_path

    path = tmp_path_factory.mktemp("style") / "starry.png"
    with Image.open(example_path("starry_night.jpg")) as im:
        im.resize((64, 50), Image.BILINEAR).save(path)
    return path


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


def test_dis_end_point_error_on_the_zoom_is_below_half_a_pixel():
    from styletransfer.video.flow import flow_and_mask

    clip = pan_zoom_clip(**CLIP)
    frames = [f.astype(np.float32) / 255 for f in clip.frames]
    for t, (prev, cur) in enumerate(zip(frames, frames[1:])):
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
    for a, b in zip(_frames(out), _frames(tmp_path / "unbroken"), strict=True):
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
