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
      "job": {the Job: content, styles, output, options, preset_fields},
      "inputs": {"content": {"path", "sha256"}, "styles": [{"path", "sha256"}, ...],
                 "init": {"path", "sha256"} or null,
                 "regions": {"masks": [...], "style_masks": [...], "fine_style": {...}}  # the ones given},
      "weights": {"path": null or a path, "sha256": ...},
      "models": {file name: sha256} of the instant preset's model files, or null,
      "output": {"path", "sha256"},
      "result": {"style", "content", "tv", "total"},    # the output's loss terms (null: the instant preset)
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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import PIL
import torch

from .errors import InputError
from .events import JobResult, JobStart
from .fileio import file_sha256, regular_file, save_file_atomically
from .images import ImageLike
from .instant.weights import model_hashes
from .job import Job, make_job
from .options import INIT_CHOICES, OPTIONS
from .presets import DEFAULT_PRESET, PRESETS, Preset
from .version import __version__
from .vgg import default_weights_path, weights_sha256

#: The manifest format's version.
FORMAT = 1


class ManifestError(InputError):
    """A manifest cannot be read, or its inputs have changed since it was written."""


def manifest_path(output: str | os.PathLike[str]) -> Path:
    """Where the manifest of ``output`` goes: ``output`` + ``.json``."""
    p = Path(output)
    return p.with_name(p.name + ".json")


def _file_entry(source: ImageLike) -> dict[str, Any]:
    if isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        return {"path": str(Path(source).resolve()), "sha256": file_sha256(source)}
    return {"path": None, "sha256": None, "note": f"in-memory {type(source).__name__}"}


#: The options that are input files besides the images (regional styles, scale mixing).
REGION_FILES = ("masks", "style_masks", "fine_style")

#: The options a rerun takes from the job besides the preset's fields.
REGION_OPTIONS = ("masks", "style_masks", "mask_mode", "auto_masks", "protect_faces", "fine_style")


def _region_entries(options: dict[str, Any]) -> dict[str, Any]:
    """The given region files, hashed: one entry per mask, one for ``fine_style``."""
    out: dict[str, Any] = {}
    for name in REGION_FILES:
        value = options.get(name)
        if value:
            out[name] = _file_entry(value) if isinstance(value, str) else [_file_entry(v) for v in value]
    return out


def _device(device: torch.device) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {"type": device.type, "name": name, "threads": torch.get_num_threads()}


def write_manifest(run: JobStart, result: JobResult) -> Path:
    """Write the manifest of a finished job beside its saved output (atomically); return its path."""
    settings = run.settings
    p: Preset = settings.preset
    init = p.init if p.init not in INIT_CHOICES else None
    weights_file = settings.weights
    steps = result.steps
    data = {
        "manifest": FORMAT,
        "status": result.status,
        "versions": {
            "styletransfer": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "numpy": __import__("numpy").__version__,
            "pillow": PIL.__version__,
        },
        "device": {**_device(settings.device), "precision": settings.precision},
        "seed": settings.seed,
        "settings": asdict(p),
        "job": run.job.to_dict(),
        "inputs": {
            "content": _file_entry(run.inputs.content),
            "styles": [_file_entry(s) for s in run.inputs.styles],
            "init": None if init is None else _file_entry(init),
            "regions": _region_entries(run.job.options),
        },
        "weights": {
            "path": weights_file,
            "file": str(default_weights_path() if weights_file is None else weights_file),
            "sha256": weights_sha256(weights_file),
        },
        "models": model_hashes() if p.instant else None,
        "output": _file_entry(result.output) if result.output is not None else None,
        "result": result.terms,
        "timings": {
            "wall_s": round(result.seconds, 3),
            "steps": steps,
            "s_per_step": round(result.seconds / steps, 4) if steps else None,
        },
    }
    text = json.dumps(data, indent=1) + "\n"
    assert result.output is not None
    return save_file_atomically(manifest_path(result.output), lambda f: f.write(text.encode()))


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
    init: str | None = None
    regions: dict[str, Any] = field(default_factory=dict)

    def job(self, output: str, device: str | None = None, **outputs: Any) -> Job:
        """The job that repeats the run: the same inputs, complete preset, seed and weights, writing ``output``.

        Every file the job reads is one whose sha256 :func:`load` checked (the
        ``inputs`` entries): the manifest's ``job`` and ``settings`` give only
        the options that are not files.  ``outputs`` are output options
        (``save_every``, ``log``, ``manifest``...).
        """
        p = self.preset if self.init is None else replace(self.preset, init=self.init)
        run = {o.name: getattr(p, o.name) for o in OPTIONS if o.from_preset}
        given = self.data.get("job", {}).get("options", {})
        run.update({k: given[k] for k in REGION_OPTIONS if k not in REGION_FILES and given.get(k) is not None})
        run.update(self.regions)
        job = make_job(
            self.content,
            self.styles,
            output,
            preset=p.name if p.name in PRESETS else DEFAULT_PRESET,
            seed=self.seed,
            device=device or self.device,
            weights=self.weights,
            precision=self.data["device"].get("precision", "fp32"),
            **run,
            **outputs,
        )
        job.preset_fields = asdict(p)
        return job


def _check_file(entry: dict[str, Any] | None, what: str, manifest: Path) -> str:
    if not entry or not entry.get("path"):
        raise ManifestError(f"{manifest}: the {what} was not a file, so the run cannot be repeated from it")
    path = entry["path"]
    if not Path(path).exists():
        raise ManifestError(f"{manifest}: the {what} {path} is gone; put it back or edit the path in the manifest")
    try:
        regular_file(path, f"the {what}")
    except InputError as exc:
        raise ManifestError(f"{manifest}: the {what} {exc}") from None
    if file_sha256(path) != entry["sha256"]:
        raise ManifestError(f"{manifest}: the {what} {path} has changed since the run (sha256 differs)")
    return str(path)


def load(path: str | os.PathLike[str]) -> Loaded:
    """Read a manifest and check that its inputs and weights are unchanged.

    Raises:
        ManifestError: unreadable JSON, an unknown format, or a changed input.
    """
    p = Path(path)
    if not p.exists():
        raise ManifestError(f"{p}: no such manifest")
    regular_file(p, "a manifest (OUT.json)", ManifestError)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{p}: no such manifest") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{p}: not a readable manifest ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict) or data.get("manifest") != FORMAT:
        raise ManifestError(f"{p}: not a styletransfer manifest (format {FORMAT})")
    try:
        preset = Preset.from_dict(data["settings"])
        content = _check_file(data["inputs"]["content"], "content image", p)
        styles = [_check_file(s, "style image", p) for s in data["inputs"]["styles"]]
        init = None
        if data["inputs"].get("init") or preset.init not in INIT_CHOICES:
            init = _check_file(data["inputs"].get("init"), "init image", p)
        regions: dict[str, Any] = {}
        recorded = data["inputs"].get("regions") or {}
        for name in REGION_FILES:
            entry = recorded.get(name)
            what = name.replace("_", " ").rstrip("s") + " file"
            if entry is None:
                if data.get("job", {}).get("options", {}).get(name):
                    raise ManifestError(f"{p}: the job names {name} files the manifest did not hash; run it anew")
                continue
            if isinstance(entry, list):
                regions[name] = [_check_file(e, what, p) for e in entry]
            else:
                regions[name] = _check_file(entry, what, p)
        weights = data["weights"]["path"]
        if preset.instant:
            if model_hashes() != data["models"]:
                raise ManifestError(f"{p}: the instant preset's model files differ from the run's (sha256)")
        elif weights_sha256(weights) != data["weights"]["sha256"]:
            raise ManifestError(f"{p}: the VGG19 weights differ from the run's (sha256)")
        device = str(data["device"]["type"])
        return Loaded(preset, int(data["seed"]), device, weights, content, styles, data, init, regions)
    except (KeyError, TypeError) as exc:
        raise ManifestError(f"{p}: a styletransfer manifest, but incomplete ({exc})") from exc
