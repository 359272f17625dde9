"""The engine every front end calls: :func:`run_job` runs one job, :func:`run_jobs` several.

It checks everything before any work, decodes each input once, runs the
preset (an optimisation, or the instant network), saves the image
(atomically) and tells its :class:`~styletransfer.events.Observer` objects
what happens.  It never prints, handles signals or reads ``sys.argv``: a
front end stops a run by making ``should_stop()`` return True (a
``threading.Event``'s ``is_set`` will do), and the run then ends within one
evaluation with the best image so far saved.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence

from torch import Tensor

from .errors import Notice
from .events import JobResult, JobStart, Observer
from .images import output_format, save_image
from .job import Job, check_outputs
from .losses import Objective
from .masks import save_layer_masks
from .observers import file_observers
from .optimize import Interrupted, Outcome, Progress
from .pipeline import (
    Inputs,
    Settings,
    batch_key,
    batch_limit,
    check_before_decoding,
    check_inputs,
    decode_inputs,
    evaluate,
    finish_image,
    layer_masks,
    objective_at,
    optimize,
    optimize_batch,
    resolve_settings,
    run_inputs,
    total_steps,
)
from .pipeline.tiles import with_planned_tiles


class AlphaDropped(Notice):
    """The content has an alpha channel, but the output's format (JPEG) has none."""


# --- The engine ---------------------------------------------------------------------------------


def prepare(job: Job) -> tuple[Settings, Inputs]:
    """Resolve the job's settings and decode its inputs, checking everything that can be checked before work.

    Returns:
        ``(settings, inputs)`` for :mod:`styletransfer.pipeline`.

    Raises:
        OptionError: an impossible option, output, log or snapshot path.
        InputError: an unreadable input image or weights file.
    """

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
    settings = with_planned_tiles(inputs, settings)
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
    """Run ``job``: check, decode, optimize, save the image, and tell ``observers``.

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

    begun = time.perf_counter() if started is None else started
    run = _Run(job, *prepare(job), observers)
    try:
        run.start()
        return run.finish(run.optimize(should_stop, begun))
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
    through :func:`~styletransfer.pipeline.optimize_batch`, one batched
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

    results: list[JobResult | Exception | None] = [None] * len(jobs)
    prepared: dict[int, tuple[Settings, Inputs]] = {}
    for i, job in enumerate(jobs):
        try:
            prepared[i] = prepare(job)
        except Exception as exc:  # this job fails alone
            results[i] = exc
    groups: dict[object, list[int]] = {}
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
            if len(runs) == 1:
                outcomes = [runs[0].optimize(should_stop, begun)]
            else:
                outcomes = optimize_batch(
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

    def __init__(self, job: Job, settings: Settings, inputs: Inputs, observers: Sequence[Observer]) -> None:

        self.job, self.settings, self.inputs = job, settings, inputs
        if job.options.get("save_masks"):
            _save_masks(job.options["save_masks"], inputs, settings)
        self.observers = [*file_observers(job), *observers]
        self.started = JobStart(job, settings, inputs, total_steps(settings.preset))
        self.steps_done = 0

    def start(self) -> None:
        for obs in self.observers:
            obs.start(self.started)

    def progress(self, p: Progress) -> None:
        self.steps_done = p.step
        for obs in self.observers:
            obs.progress(p)

    def on_scale(self, size: int, image: Tensor) -> None:
        for obs in self.observers:
            obs.scale(size, image)

    def optimize(self, should_stop: Callable[[], bool] | None, started: float) -> Outcome:
        """:func:`~styletransfer.pipeline.optimize` alone, on the inputs the run uses.

        Those are made first (:func:`~styletransfer.pipeline.run_inputs`: a
        ``fine_style`` mixed into new style images) and kept, in this run and
        in what its observers were told (:attr:`JobStart.inputs`): a stopped
        run's loss terms are scored against them, and the figures show them.
        """
        try:
            self.inputs = self.started.inputs = run_inputs(self.inputs, self.settings, should_stop=should_stop)
        except Interrupted as stop:
            return Outcome("interrupted", stop.image, stop.step)
        return optimize(
            self.inputs,
            self.settings,
            callback=self.progress,
            should_stop=should_stop,
            on_scale=self.on_scale,
            started=started,
        )

    def finish(self, outcome: Outcome) -> JobResult:
        """Save the image of ``outcome`` and tell the observers (``cancelled``, nothing saved: interrupted at step 0)."""

        if outcome.status == "interrupted" and outcome.step == 0:
            result = JobResult("cancelled", seconds=time.perf_counter() - self.started.started)
            for obs in self.observers:
                obs.end(result)
            return result
        objective, content = outcome.objective, outcome.content
        error = str(outcome.error()) if outcome.status == "diverged" else None
        final = finish_image(outcome.image.cpu(), self.inputs, self.settings)
        saved = save_image(final, self.job.output) if self.job.output is not None else None
        instant = self.settings.preset.instant
        if not instant and (objective is None or content is None):  # stopped early: the last scale's targets
            objective, content = _last_scale_objective(self.inputs, self.settings)
        result = JobResult(
            outcome.status,
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


def _save_masks(directory: str, inputs: Inputs, settings: Settings) -> None:
    """``save_masks``: what each style layer sees of each mask, at the last scale, as PNG files."""

    content_side, style_side = layer_masks(inputs, settings)
    save_layer_masks(directory, content_side, "mask")
    save_layer_masks(directory, style_side, "style_mask")


def _last_scale_objective(inputs: Inputs, settings: Settings) -> tuple[Objective, Tensor]:
    """The objective and content at the run's final size (for the loss terms of an image from a stopped run)."""

    objective, content, _ = objective_at(inputs, settings, settings.preset.size)
    return objective, content
