"""Jobs: what to run, as plain data, and the one function that runs one.

A :class:`Job` holds the inputs (paths), every effective option (the option
table's names, see :mod:`styletransfer.options`) and the outputs (the image,
and the log, snapshots, figures and manifest beside it).  It round-trips
through JSON (:meth:`Job.to_json`, :meth:`Job.from_json`).

:func:`run_job` is the engine every front end calls: the CLI now, the web
server, batch, video and Ray workers next.  It checks everything before any
work, decodes each input once, optimises, saves the image (atomically) and
tells its :class:`Observer` objects what happens.  It never prints, handles
signals or reads ``sys.argv``: a front end stops a run by making
``should_stop()`` return True (a ``threading.Event``'s ``is_set`` will do),
and the run then ends within one evaluation with the best image so far saved.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Notice, OptionError
from .options import INIT_CHOICES, OPTIONS, check_applicable, check_options
from .presets import DEFAULT_PRESET, Preset, get_preset

#: The outcome of a job: ``complete``; ``interrupted`` (stopped, the image so far
#: saved); ``cancelled`` (stopped before the first evaluation, nothing saved);
#: ``diverged`` (the loss stayed NaN or infinite, the last finite image saved).
STATUSES = ("complete", "interrupted", "cancelled", "diverged")


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


class AlphaDropped(Notice):
    """The content has an alpha channel, but the output's format (JPEG) has none."""


# --- Observers ----------------------------------------------------------------------------------


@dataclass
class JobResult:
    """How a job ended.

    Attributes:
        status: one of :data:`STATUSES`.
        image: the final picture (``None`` when cancelled).
        output: the path it was saved to, if any.
        steps: evaluations (or Adam steps) done.
        terms: the result's loss terms under the run's objective (``style``,
            ``content``, ``tv``, ``total``), or ``None`` when cancelled or for the instant
            preset (a feed-forward network has no objective).
        seconds: wall time from the start of the job.
        error: the reason, for ``diverged``.
        files: what the observers wrote besides the image, by kind
            (``"manifest"``, ``"figures"``).
    """

    status: str
    image: Any = None
    output: Path | None = None
    steps: int = 0
    terms: dict[str, float] | None = None
    seconds: float = 0.0
    error: str | None = None
    files: dict[str, list[Path]] = field(default_factory=dict)


@dataclass
class JobStart:
    """What observers learn as the run starts: the job, its resolved settings, its inputs, its step budget."""

    job: Job
    settings: Any  # pipeline.Settings
    inputs: Any  # pipeline.Inputs
    total: int
    started: float = field(default_factory=time.perf_counter)


class Observer:
    """Hears a job's events; override what you need.  Observers must not raise for a normal run.

    Order: :meth:`start`, then :meth:`progress` after every evaluation (and
    :meth:`scale` as each scale ends), then :meth:`end` once the image is saved
    (also when the run was stopped or diverged).  :meth:`close` always comes last.
    """

    def start(self, run: JobStart) -> None:
        """The run is about to optimise."""

    def progress(self, p: Any) -> None:
        """One evaluation done: ``p`` is a :class:`~styletransfer.optimize.Progress`."""

    def scale(self, size: int, image: Any) -> None:
        """A scale of a coarse-to-fine run ended with ``image`` (a CPU tensor)."""

    def end(self, result: JobResult) -> None:
        """The run ended and its image, if any, is saved."""

    def close(self) -> None:
        """Release what the observer holds (files, bars); called whatever happened."""


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


# --- The engine ---------------------------------------------------------------------------------


def prepare(job: Job) -> tuple[Any, Any]:
    """Resolve the job's settings and decode its inputs, checking everything that can be checked before work.

    Returns:
        ``(settings, inputs)`` for :mod:`styletransfer.pipeline`.

    Raises:
        OptionError: an impossible option, output, log or snapshot path.
        InputError: an unreadable input image or weights file.
    """
    from .images import output_format
    from .pipeline import check_before_decoding, check_inputs, decode_inputs, resolve_settings

    o = job.options
    settings = resolve_settings(
        job.base_preset(),
        seed=o["seed"],
        device=o["device"],
        weights=o["weights"],
        precision=o["precision"],
        mask_mode=o.get("mask_mode", "simple"),
        time_budget=o.get("time"),
        **job.run_options(),
    )
    check_outputs(job)
    check_before_decoding(
        job.content,
        job.styles,
        settings.preset.init,
        settings,
        masks=o.get("masks"),
        style_masks=o.get("style_masks"),
        fine_style=o.get("fine_style"),
    )
    inputs = decode_inputs(
        job.content,
        job.styles,
        settings.preset.init,
        masks=o.get("masks"),
        style_masks=o.get("style_masks"),
        auto_masks=o.get("auto_masks"),
        protect_faces=bool(o.get("protect_faces")),
        fine_style=o.get("fine_style"),
        preset=settings.preset,
    )
    check_inputs(inputs, settings)
    if job.output is not None and inputs.alpha is not None and output_format(job.output) == "JPEG":
        warnings.warn(
            AlphaDropped(f"{job.output} is JPEG, which has no alpha: the content's transparency is dropped"),
            stacklevel=2,
        )
    return settings, inputs


def run_job(
    job: Job,
    observers: Sequence[Observer] = (),
    *,
    should_stop: Callable[[], bool] | None = None,
    started: float | None = None,
) -> JobResult:
    """Run ``job``: check, decode, optimise, save the image, and tell ``observers``.

    The job's time budget (its ``time`` option) counts from ``started`` (a
    ``time.perf_counter()`` value: the CLI passes its process's start), by
    default from this call: decoding and the weights count too.

    The job's own output options (``log``, ``save_every``, ``figures``,
    ``manifest``) add their observers (:func:`styletransfer.observers.file_observers`)
    before ``observers``.

    A stop (``should_stop()`` returning True, or Ctrl-C in the calling thread)
    ends the run within one evaluation: the best image so far is saved and the
    status is ``interrupted``, or ``cancelled`` when no evaluation was done
    (nothing is saved then).  A diverging run saves its last finite image with
    status ``diverged``.

    Raises:
        OptionError, InputError: before any work, for what the user must fix.
        OutputError: when the image cannot be saved at the end.
    """
    from .optimize import Diverged, Interrupted
    from .pipeline import optimise

    begun = time.perf_counter() if started is None else started
    run = _Run(job, *prepare(job), observers)
    try:
        run.start()
        try:
            outcome: Any = optimise(
                run.inputs,
                run.settings,
                callback=run.progress,
                should_stop=should_stop,
                on_scale=run.on_scale,
                started=begun,
            )
        except (Interrupted, Diverged) as stop:
            outcome = stop
        return run.finish(outcome)
    finally:
        run.close()


def run_jobs(
    jobs: Sequence[Job],
    *,
    should_stop: Callable[[], bool] | None = None,
    group: int = 1,
) -> list[JobResult | Exception]:
    """Run several jobs, up to ``group`` of them at a time in one batch when they can share it.

    Each job is checked and decoded first (:func:`prepare`); one that fails
    there gets its exception in the result, alone.  The others are grouped by
    :func:`~styletransfer.pipeline.batch_key` (the settings, the styles, each
    scale's shape; L-BFGS without regions): a group of two or more runs
    through :func:`~styletransfer.pipeline.optimise_batch`, one batched
    forward and backward per evaluation for all its images, each with its own
    L-BFGS state; every job still has its own observers, stop rule, output
    (saved atomically) and :class:`JobResult`.  A lone job runs as
    :func:`run_job` runs it.  ``group=1`` runs them one by one; a group is
    also cut to what fits in memory (:func:`~styletransfer.pipeline.batch_limit`).

    A job's time budget (its ``time`` option) counts from its own start: the
    moment its run (alone, or its group's) begins, after every job was
    decoded, not from this call.  So each job of a batch gets the whole
    budget, and jobs that share a group share its start and so end by the
    same deadline: a group of ``k`` takes the budget, not ``k`` times it
    (each of its images gets fewer evaluations, each a ``k``-image one).

    Returns:
        Per job, in order: its :class:`JobResult`, or the exception that ended it
        (raised while checking and decoding it, or saving its image).
        A stop asked for ends every job still running as ``interrupted``
        (or ``cancelled``) and leaves the jobs not started as ``cancelled``.
    """
    from .optimize import Diverged, Interrupted
    from .pipeline import batch_key, batch_limit, optimise, optimise_batch

    results: list[JobResult | Exception | None] = [None] * len(jobs)
    prepared: dict[int, tuple[Any, Any]] = {}
    for i, job in enumerate(jobs):
        try:
            prepared[i] = prepare(job)
        except Exception as exc:  # this job fails alone
            results[i] = exc
    groups: dict[Any, list[int]] = {}
    for i, (settings, inputs) in prepared.items():
        key = batch_key(inputs, settings) if group > 1 else None
        groups.setdefault(("alone", i) if key is None else key, []).append(i)
    chunks = []
    for members in groups.values():
        size = min(group, batch_limit(prepared[members[0]][1], prepared[members[0]][0])) if len(members) > 1 else 1
        chunks += [members[k : k + size] for k in range(0, len(members), size)]
    for chunk in sorted(chunks):
        if should_stop is not None and should_stop():
            for i in chunk:
                results[i] = JobResult("cancelled")
            continue
        runs: list[_Run] = []
        for i in list(chunk):
            try:
                runs.append(_Run(jobs[i], *prepared[i], ()))
            except Exception as exc:  # its observers could not start (a log that cannot be opened): it fails alone
                results[i] = exc
                chunk.remove(i)
        if not runs:
            continue
        begun = time.perf_counter()  # these jobs' own start: their time budget counts from here
        try:
            for run in runs:
                run.start()
            outcomes: list[Any]
            if len(runs) == 1:
                try:
                    outcomes = [
                        optimise(
                            runs[0].inputs,
                            runs[0].settings,
                            callback=runs[0].progress,
                            should_stop=should_stop,
                            on_scale=runs[0].on_scale,
                            started=begun,
                        )
                    ]
                except (Interrupted, Diverged) as stop:
                    outcomes = [stop]
            else:
                outcomes = optimise_batch(
                    [r.inputs for r in runs],
                    runs[0].settings,
                    callbacks=[r.progress for r in runs],
                    should_stop=should_stop,
                    on_scale=[r.on_scale for r in runs],
                    started=begun,
                )
            for i, run, outcome in zip(chunk, runs, outcomes):
                try:
                    results[i] = run.finish(outcome)
                except Exception as exc:  # this job's image could not be saved: it fails alone
                    results[i] = exc
        finally:
            for run in runs:
                run.close()
    return [r if r is not None else JobResult("cancelled") for r in results]


class _Run:
    """One job's run around the optimisation: its observers, its step count, and the end (save, report)."""

    def __init__(self, job: Job, settings: Any, inputs: Any, observers: Sequence[Observer]) -> None:
        from .observers import file_observers
        from .pipeline import total_steps

        self.job, self.settings, self.inputs = job, settings, inputs
        if job.options.get("save_masks"):
            _save_masks(job.options["save_masks"], inputs, settings)
        self.observers = [*file_observers(job), *observers]
        self.started = JobStart(job, settings, inputs, total_steps(settings.preset))
        self.steps_done = 0

    def start(self) -> None:
        for obs in self.observers:
            obs.start(self.started)

    def progress(self, p: Any) -> None:
        self.steps_done = p.step
        for obs in self.observers:
            obs.progress(p)

    def on_scale(self, size: int, image: Any) -> None:
        for obs in self.observers:
            obs.scale(size, image)

    def finish(self, outcome: Any) -> JobResult:
        """Save the image of ``outcome`` (an ``Optimised``, ``Interrupted`` or ``Diverged``) and tell the observers."""
        from .images import save_image
        from .optimize import Diverged, Interrupted
        from .pipeline import evaluate, finish_image

        objective = content = None
        error = None
        elapsed = time.perf_counter() - self.started.started
        if isinstance(outcome, Interrupted):
            if outcome.step == 0:
                result = JobResult("cancelled", seconds=elapsed)
                for obs in self.observers:
                    obs.end(result)
                return result
            image, status = outcome.image.cpu(), "interrupted"
        elif isinstance(outcome, Diverged):
            image, status, error = outcome.image.cpu(), "diverged", str(outcome)
        else:
            image, objective, content, status = outcome.image, outcome.objective, outcome.content, "complete"
        final = finish_image(image, self.inputs, self.settings)
        saved = save_image(final, self.job.output) if self.job.output is not None else None
        instant = self.settings.preset.instant
        if not instant and (objective is None or content is None):  # stopped early: the last scale's targets
            objective, content = _last_scale_objective(self.inputs, self.settings)
        result = JobResult(
            status,
            final,
            saved,
            1 if instant else self.steps_done,
            None if objective is None or content is None else evaluate(objective, final, content),
            time.perf_counter() - self.started.started,
            error,
        )
        for obs in self.observers:
            obs.end(result)
        return result

    def close(self) -> None:
        for obs in self.observers:
            obs.close()


def _save_masks(directory: str, inputs: Any, settings: Any) -> None:
    """``save_masks``: what each style layer sees of each mask, at the last scale, as PNG files."""
    from .masks import save_layer_masks
    from .pipeline import layer_masks

    content_side, style_side = layer_masks(inputs, settings)
    save_layer_masks(directory, content_side, "mask")
    save_layer_masks(directory, style_side, "style_mask")


def _last_scale_objective(inputs: Any, settings: Any) -> tuple[Any, Any]:
    """The objective and content at the run's final size (for the loss terms of an image from a stopped run)."""
    from .pipeline import objective_at

    objective, content, _ = objective_at(inputs, settings, settings.preset.size)
    return objective, content
