"""The bundled example images (see ``data/examples/README.md`` for their sources)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from .errors import InputError

#: The files shipped in ``styletransfer/data/examples``.
EXAMPLES = ("tubingen.jpg", "starry_night.jpg", "the_scream.jpg", "shipwreck.jpg")


def example_path(name: str) -> Path:
    """The path of a bundled example image, e.g. ``example_path("tubingen.jpg")``."""
    if name not in EXAMPLES:
        raise InputError(f"no bundled example {name!r}; choose from {', '.join(EXAMPLES)}")
    return Path(str(importlib.resources.files("styletransfer") / "data" / "examples" / name))
