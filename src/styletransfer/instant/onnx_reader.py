"""A reader for the parts of an ONNX model file that hold weights: its graph's nodes and initialisers.

An ONNX file is a protocol-buffers message (``onnx.proto``); this decodes
the few fields a weights loader needs, without the ``onnx`` package (whose
import alone takes 0.7 s, a fifth of the instant preset's whole run):

* ``ModelProto.graph`` (field 7) -> ``GraphProto``: ``node`` (1), ``initializer`` (5);
* ``NodeProto``: ``input`` (1), ``output`` (2), ``op_type`` (4), ``attribute`` (5);
* ``AttributeProto``: ``name`` (1), ``i`` (3), ``ints`` (8);
* ``TensorProto``: ``dims`` (1), ``data_type`` (2), ``float_data`` (4),
  ``int32_data`` (5), ``int64_data`` (7), ``name`` (8), ``raw_data`` (9).

The wire format: each field is a varint key ``number << 3 | wire_type``, then
a varint (type 0), 8 bytes (1), a varint length and that many bytes (2), or
4 bytes (5).  Tensors in ``raw_data`` are little-endian.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import numpy as np


class OnnxFormatError(ValueError):
    """The bytes are not a well-formed ONNX model (truncated, or not protocol buffers)."""


#: ``TensorProto.DataType`` -> NumPy dtype, for the types weights come in.
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),
    2: np.dtype("u1"),
    3: np.dtype("i1"),
    5: np.dtype("<i2"),
    6: np.dtype("<i4"),
    7: np.dtype("<i8"),
    10: np.dtype("<f2"),
    11: np.dtype("<f8"),
}


@dataclass
class Node:
    """One graph node: its operator, its input and output tensor names, its integer attributes."""

    op_type: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    ints: dict[str, int | list[int]] = field(default_factory=dict)


@dataclass
class Graph:
    """A model's graph: its nodes in order and its initialisers by name."""

    nodes: list[Node]
    initializers: dict[str, np.ndarray]


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise OnnxFormatError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise OnnxFormatError("varint longer than 64 bits")


def fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Each field of the message ``buf`` as ``(number, value)``: an int (varint), else its bytes."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise OnnxFormatError(f"unknown wire type {wire}")
        if pos > end:
            raise OnnxFormatError("truncated field")
        yield number, value


def _signed(value: int) -> int:
    """A varint as the two's-complement int64 protobuf writes negative numbers as."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed_varints(value: int | bytes) -> list[int]:
    if isinstance(value, int):
        return [_signed(value)]
    out, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(_signed(v))
    return out


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise OnnxFormatError("expected a string field")
    return value.decode("utf-8", errors="replace")


def _tensor(buf: bytes) -> tuple[str, np.ndarray]:
    dims: list[int] = []
    name, dtype_code, raw = "", 0, None
    floats: list[float] = []
    ints: list[int] = []
    for number, value in fields(buf):
        if number == 1:
            dims += _packed_varints(value)
        elif number == 2 and isinstance(value, int):
            dtype_code = value
        elif number == 8:
            name = _text(value)
        elif number == 9 and isinstance(value, bytes):
            raw = value
        elif number == 4 and isinstance(value, bytes):
            floats += np.frombuffer(value, "<f4").tolist()
        elif number in (5, 7):
            ints += _packed_varints(value)
    dtype = _DTYPES.get(dtype_code)
    if dtype is None:
        raise OnnxFormatError(f"tensor {name!r}: unsupported data type {dtype_code}")
    if raw is not None:
        array = np.frombuffer(raw, dtype).copy()
    else:
        array = np.asarray(floats if dtype.kind == "f" else ints, dtype=dtype)
    count = int(np.prod(dims)) if dims else 1
    if array.size != count:
        raise OnnxFormatError(f"tensor {name!r}: {array.size} values for shape {dims}")
    return name, array.reshape(dims)


def _node(buf: bytes) -> Node:
    node = Node()
    for number, value in fields(buf):
        if number == 1:
            node.inputs.append(_text(value))
        elif number == 2:
            node.outputs.append(_text(value))
        elif number == 4:
            node.op_type = _text(value)
        elif number == 5 and isinstance(value, bytes):
            name, ints = "", cast(int | list[int] | None, None)
            for n, v in fields(value):
                if n == 1:
                    name = _text(v)
                elif n == 3 and isinstance(v, int):
                    ints = _signed(v)
                elif n == 8:
                    ints = (ints if isinstance(ints, list) else []) + _packed_varints(v)
            if ints is not None:
                node.ints[name] = ints
    return node


def read_graph(data: bytes) -> Graph:
    """The graph of the ONNX model ``data`` (a file's bytes).

    Raises:
        OnnxFormatError: the bytes are not an ONNX model with a graph.
    """
    graph = next((v for n, v in fields(data) if n == 7 and isinstance(v, bytes)), None)
    if graph is None:
        raise OnnxFormatError("no graph")
    nodes, inits = [], {}
    for number, value in fields(graph):
        if number == 1 and isinstance(value, bytes):
            nodes.append(_node(value))
        elif number == 5 and isinstance(value, bytes):
            name, array = _tensor(value)
            inits[name] = array
    if not nodes:
        raise OnnxFormatError("a graph with no nodes")
    return Graph(nodes, inits)
