"""The bench scripts' own arithmetic and smoke runs (the benchmarks themselves are too slow for CI), and their layout."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest
import torch

from bench import common
from bench.benchmarks import gpu, whole_run
from bench.tuning import ceiling

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(
    ".".join(p.relative_to(BENCH.parent).with_suffix("").parts) for p in BENCH.glob("*/*.py") if p.name != "__init__.py"
)


def test_vgg_gflop_counts_forward_and_input_backward() -> None:
    # Up to block1_conv2 on 16x16: (3*64 + 64*64) * 9 * 2 FLOP per pixel, forward; x2 for backward.
    expected = 2 * (2 * 9 * (3 * 64 + 64 * 64) * 16 * 16) / 1e9
    assert whole_run.vgg_gflop(16, 16, last="block1_conv2") == expected
    # The seed's deepest layer at 512x384 costs about 145 GFLOP forward.
    assert 280 < whole_run.vgg_gflop(384, 512) < 300


def test_cli_run_times_a_whole_process_and_cleans_its_snapshots(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = tiny_pair
    out = tmp_path / "fast.png"
    r = whole_run.cli_run("fast", content, style, out, size=64, threads=1, steps=10, every=5)
    assert out.exists() and not list(tmp_path.glob("fast.step*.png"))  # the snapshots were scored, then removed
    assert r["evaluations"] == 10 and set(r["step_ms"]) == {64}
    assert 0 < r["startup"] < r["wall"]  # Python's start-up, the weights and the save are in the whole run
    assert r["loss"]["total"] > 0 and r["precision"] == "fp32"
    assert r["reached"] is None or r["reached"][0] % 5 == 0


def test_evaluation_profile_accounts_for_the_convolutions() -> None:
    from styletransfer.examples import example_path

    median_ms, wall_ms, rows = whole_run.evaluation_profile(
        example_path("tubingen.jpg"), example_path("starry_night.jpg"), size=32
    )
    assert median_ms > 0
    parts = dict(rows)
    assert list(parts)[-1] == "everything else" and len(parts) == len(whole_run.PROFILE_GROUPS) + 1
    assert all(ms >= 0 for ms in parts.values())
    assert parts["convolutions, forward"] > 0 and parts["convolutions, backward to the input"] > 0
    assert parts["Gram matrices and their gradients (bmm)"] > 0
    # Ops run one after another on the calling thread: their self times add up to at most the wall time.
    assert 0 < sum(parts.values()) <= wall_ms + 1.0


def test_ceiling_blur_keeps_the_shape_and_removes_only_detail() -> None:
    flat = torch.full((1, 3, 24, 32), 0.25)
    assert torch.allclose(ceiling.blurred(flat, 2.0), flat)
    stripes = torch.zeros(1, 3, 24, 32)
    stripes[..., ::2] = 1.0  # the finest detail there is: gone after a 2x blur
    out = ceiling.blurred(stripes, 2.0)
    assert out.shape == stripes.shape and float(out.std()) < 0.05 * float(stripes.std())
    assert abs(float(out.mean()) - 0.5) < 0.02


def test_ceiling_gram_distance_of_an_image_to_itself_is_zero() -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 32)
    assert ceiling.relative_gram_distances(image, image) == [0.0] * 5
    assert all(d > 0 for d in ceiling.relative_gram_distances(image.flip(1), image))


def test_peak_probe_names_its_kernel() -> None:
    rate, probe = whole_run.peak_gflops(repeats=1, n=256, side=16)
    assert rate > 0 and probe in ("fp32 matmul 256", "fp32 3x3 convolution 256->256 at 16x16")
    rate, probe = whole_run.peak_gflops(repeats=1, dtype=torch.bfloat16, n=256, side=16)
    assert rate > 0 and probe.startswith("bf16 ")


def test_machine_description_names_the_cpu_and_its_flags() -> None:
    text = common.machine_description()
    for flag in ("avx512f", "avx512_bf16", "amx_tile"):
        assert flag in text or "CPU flags unknown" in text
    assert "logical CPUs" in text


def test_pastiche_command_keeps_its_defaults_unless_told(tmp_path: Path) -> None:
    c, s, o = Path("c.jpg"), Path("s.jpg"), tmp_path / "o.png"
    plain = whole_run.pastiche_command(c, s, o, None, None)
    assert plain[1:] == ["-m", "pastiche", "--content", "c.jpg", "--styles", "s.jpg", "--output", str(o)]
    assert whole_run.pastiche_command(c, s, o, 512, 24)[-4:] == ["--size", "512", "--num-steps", "24"]


def test_peers_skip_with_a_message_when_their_packages_are_missing(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(whole_run, "missing", lambda module: True)
    c, s = Path("c.jpg"), Path("s.jpg")
    seed = whole_run.seed_tf_probe(c, s, 2, 64, 2, tmp_path / "seed.png")
    assert isinstance(seed, str) and "TensorFlow is not installed" in seed and ".[bench]" in seed
    peer = whole_run.pastiche_probe(c, s, 2, 64, 2, tmp_path / "p.png")
    assert isinstance(peer, str) and "pastiche is not installed" in peer


def test_the_table_divides_whole_runs_by_the_defaults(capsys) -> None:
    seed = {
        "shape": [384, 512],
        "tensorflow": "2.x",
        "threads": 2,
        "first_s": 5.0,
        "step_s": [1.0, 1.0],
        "median_step_s": 1.0,
        "estimated_1000_s": 1004.0,
        "losses": [6.538e8, 4.235e8, 2.452e8],
    }
    peer = {
        "defaults": {"optimizer": "lbfgs", "size_pixels": 250000},
        "size": "512x384",
        "per_step_s": 2.0,
        "default_steps": 1000,
        "estimated_s": 2008.0,
    }
    tutorial = {"probe_steps": 24, "wall": 30.0, "step_ms": 1500.0, "estimated_s": 1494.0}
    run = {"wall": 100.4, "loss": {"total": 5.0e6}, "evaluations": 250, "step_ms": {512: 380.0}, "reached": (200, 80.0)}
    ours = {
        "fast": {**run, "precision": "bf16"},
        "quality": {**run, "wall": 200.8, "precision": "bf16", "reached": None},
    }
    whole_run.print_table(seed, peer, tutorial, ours, 512)
    out = capsys.readouterr().out
    assert "| 1004 | 5.318e+06 | 1004 | 10.0x |" in out and "| 2008 | - | - | 20.0x |" in out
    assert "| 1494 | 5.318e+06 | 1494 | 14.9x |" in out
    assert "| 100 | 5e+06 | 80 (evaluation 200) | 1.0x |" in out and "| 201 | 5e+06 | not reached | 0.5x |" in out
    whole_run.print_table("skipped: TensorFlow is not installed", peer, tutorial, ours, 512)
    assert "skipped: TensorFlow" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_runs_end_to_end_with_tiny_step_counts(tmp_path: Path, capsys) -> None:
    argv = ["--size", "64", "--steps", "3", "--probe-steps", "2", "--seed-steps", "2", "--pastiche-steps", "2"]
    assert whole_run.main([*argv, "--presets", "fast", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "machine: " in out and "| program | whole run, start to saved file (s) |" in out
    if whole_run.missing("tensorflow"):
        assert "skipped: TensorFlow is not installed" in out
    else:
        assert "the seed's TensorFlow code (1000 steps, estimated" in out and (tmp_path / "seed_probe.png").is_file()
    assert "pastiche's default (" in out and "64x48" in out
    assert "| `fast` (fp32, 3 evaluations" in out
    assert (tmp_path / "fast.png").is_file()


def test_gpu_check_runs_on_the_cpu(tmp_path: Path) -> None:
    """bench/benchmarks/gpu.py, the script prepared for a lent GPU, at a tiny size on this CPU (tf32 is CUDA-only)."""
    out = tmp_path / "gpu.json"
    small = ["--device", "cpu", "--sizes", "32", "--repeats", "1", "--batch", "2", "--batch-size", "32"]
    small += ["--instant-sizes", "32", "--tiled-size", "256", "--tile", "320", "--tiled-precisions", "fp32"]
    assert (
        gpu.main([*small, "--batch-evaluations", "2", "--run-size", "32", "--run-steps", "3", "--json", str(out)]) == 0
    )
    result = json.loads(out.read_text())
    assert [r["precision"] for r in result["evaluation"]] == ["fp32", "bf16"]
    assert all(r["ms"] > 0 for r in result["evaluation"])
    assert all(r["batched_images_s"] > 0 and r["alone_images_s"] > 0 for r in result["batch"])
    runs = {r["precision"]: r for r in result["run"]}
    assert runs["fp32"]["ratio_to_fp32"] == 1.0 and runs["fp32"]["evaluations"] == 3
    assert 0.9 < runs["bf16"]["ratio_to_fp32"] < 1.1
    assert [(r["precision"], r["size"]) for r in result["instant"]] == [("fp32", 32), ("bf16", 32)]
    assert all(r["ms"] > 0 for r in result["instant"])
    (tiles,) = result["tiles"]  # 256x192 in 4 tiles: exact in fp32
    assert tiles["precision"] == "fp32" and tiles["terms_rel"] < 1e-5 and tiles["grad_rel"] < 1e-5
    assert tiles["whole_s"] > 0 and tiles["tiled_s"] > 0


@pytest.mark.parametrize("module", SCRIPTS)
def test_each_script_imports_and_gives_its_module_command_line(module: str) -> None:
    """Run as ``python -m bench.<kind>.<name>`` from the root: no ``sys.path`` edits, the docstring says so."""
    path = BENCH.parent.joinpath(*module.split(".")).with_suffix(".py")
    source = path.read_text()
    assert "sys.path" not in source
    doc = ast.get_docstring(ast.parse(source)) or ""
    assert f"python -m {module}" in doc or f"python3 -m {module}" in doc
    assert "python bench/" not in doc and "bench/bench.py" not in doc
    if module == "bench.benchmarks.studio":
        pytest.importorskip("playwright")
    importlib.import_module(module)


def test_the_scripts_are_sorted_by_kind() -> None:
    assert not [p.name for p in BENCH.glob("*.py") if p.name not in ("__init__.py", "common.py")]
    assert {p.parent.name for p in BENCH.glob("*/*.py")} == {"benchmarks", "tuning", "figures"}
    assert (BENCH / "data" / "pairs_reference.json").is_file()


def test_median_seconds_runs_its_warm_ups_untimed() -> None:
    calls: list[int] = []
    assert common.median_seconds(lambda: calls.append(1), repeats=3, warmups=2) >= 0
    assert len(calls) == 5


def test_git_commit_names_the_checkout() -> None:
    assert common.git_commit()  # a short hash here, "unknown" outside a git checkout
