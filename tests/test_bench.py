"""The benchmark's own arithmetic (the benchmark itself is too slow for CI)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import torch  # noqa: E402

import bench  # noqa: E402


def test_vgg_gflop_counts_forward_and_input_backward() -> None:
    # Up to block1_conv2 on 16x16: (3*64 + 64*64) * 9 * 2 FLOP per pixel, forward; x2 for backward.
    expected = 2 * (2 * 9 * (3 * 64 + 64 * 64) * 16 * 16) / 1e9
    assert bench.vgg_gflop(16, 16, last="block1_conv2") == expected
    # The seed's deepest layer at 512x384 costs about 145 GFLOP forward.
    assert 280 < bench.vgg_gflop(384, 512) < 300


def test_time_to_reach() -> None:
    curve = [(1, 10.0, 0.5), (2, 6.0, 1.0), (3, 4.0, 1.5), (4, 3.0, 2.0)]
    assert bench.time_to_reach(curve, 4.0) == (3, 1.5)
    assert bench.time_to_reach(curve, 1.0) is None


def test_evaluation_profile_accounts_for_the_convolutions() -> None:
    from styletransfer.examples import example_path

    median_ms, wall_ms, rows = bench.evaluation_profile(
        example_path("tubingen.jpg"), example_path("starry_night.jpg"), size=32
    )
    assert median_ms > 0
    parts = dict(rows)
    assert list(parts)[-1] == "everything else" and len(parts) == len(bench.PROFILE_GROUPS) + 1
    assert all(ms >= 0 for ms in parts.values())
    assert parts["convolutions, forward"] > 0 and parts["convolutions, backward to the input"] > 0
    assert parts["Gram matrices and their gradients (bmm)"] > 0
    # Ops run one after another on the calling thread: their self times add up to at most the wall time.
    assert 0 < sum(parts.values()) <= wall_ms + 1.0


def test_ceiling_blur_keeps_the_shape_and_removes_only_detail() -> None:
    import ceiling

    flat = torch.full((1, 3, 24, 32), 0.25)
    assert torch.allclose(ceiling.blurred(flat, 2.0), flat)
    stripes = torch.zeros(1, 3, 24, 32)
    stripes[..., ::2] = 1.0  # the finest detail there is: gone after a 2x blur
    out = ceiling.blurred(stripes, 2.0)
    assert out.shape == stripes.shape and float(out.std()) < 0.05 * float(stripes.std())
    assert abs(float(out.mean()) - 0.5) < 0.02


def test_ceiling_gram_distance_of_an_image_to_itself_is_zero() -> None:
    import ceiling

    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 32)
    assert ceiling.relative_gram_distances(image, image) == [0.0] * 5
    assert all(d > 0 for d in ceiling.relative_gram_distances(image.flip(1), image))


def test_peak_probe_names_its_kernel() -> None:
    rate, probe = bench.peak_gflops(repeats=1)
    assert rate > 0 and probe in ("fp32 matmul 4096", "3x3 convolution 256->256 at 64x64")
