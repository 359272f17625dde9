"""A job: what to run, as plain data, and the checks of its outputs before any work.

A :class:`Job` holds the inputs (paths), every effective option (the option
table's names, see :mod:`styletransfer.options`) and the outputs (the image,
and the log, snapshots, figures and manifest beside it).  It round-trips
through JSON (:meth:`Job.to_json`, :meth:`Job.from_json`).  :func:`make_job`
fills in every option; :func:`check_outputs` refuses outputs that cannot be
written or would overwrite something.  Torch-free: the CLI parses and checks
a job before it imports the engine (:mod:`styletransfer.runner` runs it).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import OptionError
from .options import INIT_CHOICES, OPTIONS, check_applicable, check_options
from .presets import DEFAULT_PRESET, Preset, get_preset


@dataclass
class Job:
    """One stylisation to run: inputs, every effective option, outputs.

    Attributes:
        content: the content image's path.
        styles: the style images' paths.
        output: where the image goes (its extension names the format); ``None``
            writes nothing (the result is only returned).
        options: every option of :data:`~styletransfer.options.OPTIONS`, with
            its effective value (the preset's where not given).
        preset_fields: the complete preset when it is not one of the named
            ones (a manifest's, to repeat a run exactly); ``None`` otherwise.
    """

    content: str
    styles: list[str]
    output: str | None
    options: dict[str, Any]
    preset_fields: dict[str, Any] | None = None

    def base_preset(self) -> Preset:
        """The preset the options start from."""
        if self.preset_fields is not None:
            return Preset.from_dict(self.preset_fields)
        return get_preset(self.options["preset"])

    def preset(self) -> Preset:
        """The preset the job runs: :meth:`base_preset` with the options that are preset fields."""
        return self.base_preset().with_overrides(**self.run_options())

    def run_options(self) -> dict[str, Any]:
        """The options that are preset fields (``size``, ``steps``...), for :func:`~styletransfer.pipeline.resolve_settings`."""
        return {o.name: self.options[o.name] for o in OPTIONS if o.from_preset}

    def snapshot_path(self, step: int) -> Path:
        """Where ``save_every`` writes the snapshot of ``step``: ``OUT.stepNNNNN.EXT``."""
        if self.output is None:
            raise OptionError("save_every", "{option} needs an output to name the snapshots after")
        out = Path(self.output)
        return out.with_name(f"{out.stem}.step{step:05d}{out.suffix}")

    def to_dict(self) -> dict[str, Any]:
        """The job as JSON-ready data (tuples become lists)."""
        return {
            "content": self.content,
            "styles": list(self.styles),
            "output": self.output,
            "options": {k: list(v) if isinstance(v, tuple) else v for k, v in self.options.items()},
            "preset_fields": self.preset_fields,
        }

    def to_json(self) -> str:
        """The job as one JSON object."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        """A job from :meth:`to_dict`'s data, its options checked again."""
        try:
            preset_fields = data.get("preset_fields")
            job = make_job(data["content"], data["styles"], data.get("output"), **data["options"])
        except KeyError as exc:
            raise OptionError(str(exc.args[0]), "a job needs {option}") from None
        job.preset_fields = preset_fields
        return job

    @classmethod
    def from_json(cls, text: str) -> Job:
        """A job from :meth:`to_json`'s text."""
        return cls.from_dict(json.loads(text))


def make_job(
    content: str | os.PathLike[str],
    style: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Job:
    """A :class:`Job` with every option filled in: the given ones checked, the rest from the preset or the table.

    Raises:
        OptionError: for an unknown option or an impossible value.
    """
    given = check_options(options)
    preset = get_preset(given.get("preset", DEFAULT_PRESET))
    check_applicable(preset, given)
    # the preset with the given fields, its steps set for the job's size (its budget per pixel) unless steps is given
    sized = preset.with_overrides(
        **{o.name: given.get(o.name) for o in OPTIONS if o.from_preset and o.name != "init"}
    ).sized()
    effective: dict[str, Any] = {}
    for o in OPTIONS:
        if o.name in given:
            effective[o.name] = given[o.name]
        elif o.name == "init" or not o.from_preset:
            effective[o.name] = getattr(preset, o.name) if o.name == "init" else o.default
        else:
            effective[o.name] = getattr(sized, o.name)
    styles = [str(style)] if isinstance(style, (str, os.PathLike)) else [str(s) for s in style]
    return Job(str(content), styles, None if output is None else str(output), effective)


# --- Checks before any work ---------------------------------------------------------------------


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether both paths exist and are one file (symbolic and hard links included)."""
    return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)


def init_file(init: str | None) -> list[str]:
    """``[init]`` when ``init`` names a file, else ``[]``."""
    return [] if init is None or init in INIT_CHOICES else [init]


def check_outputs(job: Job, inputs: Sequence[str] | None = None) -> None:
    """Refuse, before any work, outputs that cannot be written or would overwrite an input or each other.

    Checks the image path (format, directory, permission, not an input), the
    log, and the snapshot paths (never overwritten: a taken one refuses the run).

    Raises:
        OptionError: on ``output``, ``log``, ``save_every`` or ``init``.
    """
    from .images import output_format

    masks = [
        *(job.options.get("masks") or ()),
        *(job.options.get("style_masks") or ()),
        *init_file(job.options.get("fine_style")),
    ]
    sources = (
        [job.content, *job.styles, *masks, *init_file(job.options.get("init"))] if inputs is None else list(inputs)
    )
    init = job.options.get("init")
    if init is not None and init_file(init) and not os.path.exists(init):
        raise OptionError("init", f"{{option}} {init}: no such file; use content, noise, style or the path of an image")
    if job.output is None:
        return
    out = Path(job.output)
    output_format(out)
    if out.is_dir():
        raise OptionError("output", f"{out}: is a directory; give a file name such as {out / 'out.png'}")
    for src in sources:
        if _same_file(out, src):
            raise OptionError("output", f"{out}: the output would overwrite the input image {src}; choose another path")
    directory = out.parent if str(out.parent) else Path(".")
    if not directory.is_dir():
        raise OptionError(
            "output", f"{out}: the directory {out.parent} does not exist; create it or choose another path"
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OptionError("output", f"{out}: cannot write in {directory} (permission denied); choose another path")
    if job.options.get("log"):
        _check_log(job.options["log"], out, sources)
    saved = job.options.get("save_masks")
    if saved and os.path.exists(saved) and not os.path.isdir(saved):
        raise OptionError("save_masks", f"{{option}} {saved}: is a file, not a directory; choose another path")
    if job.options.get("save_every"):
        _check_snapshots(job)


def _check_log(log: str, output: Path, sources: Sequence[str]) -> None:
    """Refuse a log path that is a directory, lies in a missing one, or is the output or an input."""
    path = Path(log)
    if path.is_dir():
        raise OptionError("log", f"{{option}} {log}: is a directory; give a file name such as {path / 'log.csv'}")
    if path.resolve() == output.resolve() or _same_file(path, output):
        raise OptionError("log", f"{{option}} {log}: the log would be written over the output; choose another path")
    for src in sources:
        if _same_file(path, src):
            raise OptionError(
                "log", f"{{option}} {log}: the log would overwrite the input image {src}; choose another path"
            )
    if not (path.parent if str(path.parent) else Path(".")).is_dir():
        raise OptionError(
            "log", f"{{option}} {log}: the directory {path.parent} does not exist; create it or choose another path"
        )


def _check_snapshots(job: Job) -> None:
    """Refuse to start when a file exists where a snapshot would be written (snapshots never overwrite)."""
    from .pipeline import total_steps

    assert job.output is not None
    every = int(job.options["save_every"])
    steps = total_steps(job.preset())
    out = Path(job.output)
    directory = out.parent if str(out.parent) else Path(".")
    pattern = re.compile(re.escape(out.stem) + r"\.step(\d{5,})" + re.escape(out.suffix))
    taken = []
    for name in sorted(os.listdir(directory)):
        match = pattern.fullmatch(name)
        if match is None:
            continue
        step = int(match[1])
        if 0 < step <= steps and step % every == 0 and job.snapshot_path(step).name == name:
            taken.append(directory / name)
    if taken:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise OptionError(
            "save_every",
            f"{taken[0]}{more}: already exists and {{option}} {every} would overwrite it; "
            "move the old snapshots away or choose another output",
        )
