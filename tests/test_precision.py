"""Precision and its cost: each precision runs or says why not, auto's choice, how an evaluation grows with pixels."""

from __future__ import annotations

from pathlib import Path

import pytest

from styletransfer import api
from styletransfer.errors import OptionError

TINY = {"preset": "fast", "size": 32, "device": "cpu"}


def test_each_precision_runs_or_says_why_not_on_this_device(tiny_pair: tuple[Path, Path]) -> None:
    content, style = tiny_pair
    exact = api.stylize(content, style, preset="tutorial", size=32, steps=3, device="cpu", precision="fp32")
    bf16 = api.stylize(content, style, preset="tutorial", size=32, steps=3, device="cpu", precision="bf16")
    assert bf16.size == exact.size
    a, b = (api.loss_terms(im, content, style, size=32)["total"] for im in (exact, bf16))
    assert b == pytest.approx(a, rel=0.05)  # bf16 convolutions, fp32 Gram and losses: close, not equal
    with pytest.raises(OptionError, match="tf32 is a CUDA GPU mode") as info:
        api.stylize(content, style, size=32, steps=1, device="cpu", precision="tf32")
    assert info.value.option == "precision"


def test_auto_precision_is_bf16_only_for_lbfgs_on_a_cpu_with_bf16_units() -> None:
    import torch

    from styletransfer.pipeline import check_precision, native_bf16, resolve_settings

    cpu = torch.device("cpu")
    units = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert native_bf16(cpu) == units  # AVX-512-BF16 (AMD Zen 4, Intel Cooper Lake) counts, not only AMX
    assert not native_bf16(torch.device("meta"))
    expected = "bf16" if units else "fp32"
    assert check_precision("auto", cpu, "lbfgs") == expected
    assert check_precision("auto", cpu, "lbfgs", size=383) == "fp32"  # small images stay exact
    assert check_precision("auto", cpu, "adam") == "fp32"  # the tutorial stays the seed's arithmetic
    assert resolve_settings("fast", device="cpu").precision == expected
    assert resolve_settings("fast", size=256, device="cpu").precision == "fp32"
    assert resolve_settings("tutorial", device="cpu").precision == "fp32"
    assert resolve_settings("fast", device="cpu", precision="fp32").precision == "fp32"


def test_an_evaluation_grows_faster_than_its_pixels_above_512_px_on_a_cpu() -> None:
    import torch

    from styletransfer.pipeline import LARGE_PIXELS, PIXEL_EXPONENT, RUN_OVERHEAD, scaled_seconds

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    n = LARGE_PIXELS // 4
    assert scaled_seconds(1.0, n, n, "bf16", cpu) == pytest.approx(RUN_OVERHEAD)
    assert scaled_seconds(1.0, n, LARGE_PIXELS, "bf16", cpu) == pytest.approx(RUN_OVERHEAD * 4**PIXEL_EXPONENT)
    big = scaled_seconds(1.0, n, 16 * LARGE_PIXELS, "bf16", cpu) / scaled_seconds(1.0, n, LARGE_PIXELS, "bf16", cpu)
    assert big == pytest.approx(16**1.1)
    assert scaled_seconds(1.0, n, 16 * LARGE_PIXELS, "fp32", cuda) == pytest.approx(RUN_OVERHEAD * 64**PIXEL_EXPONENT)


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "expected"), [(True, False, True), (False, True, True), (False, False, False)]
)
def test_bf16_units_are_amx_or_avx512_bf16(
    monkeypatch: pytest.MonkeyPatch, amx: bool, avx512_bf16: bool, expected: bool
) -> None:
    import torch

    from styletransfer.pipeline import check_precision, native_bf16

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    cpu = torch.device("cpu")
    assert native_bf16(cpu) is expected
    assert check_precision("auto", cpu, "lbfgs", size=512) == ("bf16" if expected else "fp32")
