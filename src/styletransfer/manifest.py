"""Run manifests: everything needed to repeat a run, and what it gave.

``--manifest`` writes ``OUT.json`` beside the output (``out.png`` ->
``out.png.json``)::

    {
      "manifest": 1,
      "status": "complete" | "interrupted" | "diverged",
      "versions": {"styletransfer", "torch", "python", "numpy", "pillow"},
      "device": {"type": "cpu", "name": ..., "threads": N},
      "seed": 0,
      "settings": {every field of the effective Preset},
      "inputs": {"content": {"path", "sha256"}, "styles": [{"path", "sha256"}, ...],
                 "init": {"path", "sha256"} or null},
      "weights": {"path": null or a path, "sha256": ...},
      "output": {"path", "sha256"},
      "result": {"style", "content", "tv", "total"},    # the output's loss terms
      "timings": {"wall_s", "steps", "s_per_step"}
    }

:func:`load` rebuilds the settings; ``styletransfer rerun`` repeats the run
with them.  On the same device, with the same versions and thread count, the
rerun's image is the same, pixel for pixel.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from . import __version__
from .images import ImageLike, save_file_atomically
from .presets import Preset
from .vgg import default_weights_path, file_sha256, weights_sha256

#: The manifest format's version.
FORMAT = 1


class ManifestError(ValueError):
    """A manifest cannot be read, or its inputs have changed since it was written."""


def manifest_path(output: str | os.PathLike[str]) -> Path:
    """Where the manifest of ``output`` goes: ``output`` + ``.json``."""
    p = Path(output)
    return p.with_name(p.name + ".json")


def _file_entry(source: ImageLike) -> dict[str, Any]:
    if isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        return {"path": str(Path(source).resolve()), "sha256": file_sha256(source)}
    return {"path": None, "sha256": None, "note": f"in-memory {type(source).__name__}"}


def _device(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
    return {"type": device.type, "name": name, "threads": torch.get_num_threads()}


@dataclass
class Run:
    """One run being recorded: created before it starts, written when it ends."""

    settings: Any  # api.Settings
    content: ImageLike
    styles: list[ImageLike]
    output: str | os.PathLike[str]
    start: float = field(default_factory=time.perf_counter)

    def write(self, image: Image.Image, status: str, steps: int) -> Path:
        """Write the manifest beside the output (atomically); ``image`` is what was saved."""
        from .api import final_terms

        wall = time.perf_counter() - self.start
        p: Preset = self.settings.preset
        init = p.init if p.init not in ("content", "noise", "style") else None
        weights_file = self.settings.weights
        data = {
            "manifest": FORMAT,
            "status": status,
            "versions": {
                "styletransfer": __version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
                "numpy": __import__("numpy").__version__,
                "pillow": Image.__version__,
            },
            "device": _device(self.settings.device),
            "seed": self.settings.seed,
            "settings": asdict(p),
            "inputs": {
                "content": _file_entry(self.content),
                "styles": [_file_entry(s) for s in self.styles],
                "init": None if init is None else _file_entry(init),
            },
            "weights": {
                "path": weights_file,
                "file": str(default_weights_path() if weights_file is None else weights_file),
                "sha256": weights_sha256(weights_file),
            },
            "output": _file_entry(self.output),
            "result": final_terms(image, self.content, self.styles, self.settings),
            "timings": {"wall_s": round(wall, 3), "steps": steps, "s_per_step": round(wall / steps, 4) if steps else None},
        }
        text = json.dumps(data, indent=1) + "\n"
        return save_file_atomically(manifest_path(self.output), lambda f: f.write(text.encode()))


@dataclass(frozen=True)
class Loaded:
    """A manifest read back: what :func:`styletransfer.cli` needs to repeat the run."""

    preset: Preset
    seed: int
    device: str
    weights: str | None
    content: str
    styles: list[str]
    data: dict[str, Any]


def _check_file(entry: dict[str, Any] | None, what: str, manifest: Path) -> str:
    if not entry or not entry.get("path"):
        raise ManifestError(f"{manifest}: the {what} was not a file, so the run cannot be repeated from it")
    path = entry["path"]
    if not Path(path).is_file():
        raise ManifestError(f"{manifest}: the {what} {path} is gone; put it back or edit the path in the manifest")
    if file_sha256(path) != entry["sha256"]:
        raise ManifestError(f"{manifest}: the {what} {path} has changed since the run (sha256 differs)")
    return str(path)


def load(path: str | os.PathLike[str]) -> Loaded:
    """Read a manifest and check that its inputs and weights are unchanged.

    Raises:
        ManifestError: unreadable JSON, an unknown format, or a changed input.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{p}: no such manifest") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{p}: not a readable manifest ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict) or data.get("manifest") != FORMAT:
        raise ManifestError(f"{p}: not a styletransfer manifest (format {FORMAT})")
    try:
        raw = dict(data["settings"])
        known = {f.name for f in fields(Preset)}
        preset = Preset(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known})
        content = _check_file(data["inputs"]["content"], "content image", p)
        styles = [_check_file(s, "style image", p) for s in data["inputs"]["styles"]]
        if data["inputs"].get("init"):
            _check_file(data["inputs"]["init"], "init image", p)
        weights = data["weights"]["path"]
        if weights_sha256(weights) != data["weights"]["sha256"]:
            raise ManifestError(f"{p}: the VGG19 weights differ from the run's (sha256)")
        return Loaded(preset, int(data["seed"]), str(data["device"]["type"]), weights, content, styles, data)
    except (KeyError, TypeError) as exc:
        raise ManifestError(f"{p}: a styletransfer manifest, but incomplete ({exc})") from exc
