"""Batch: many content images, each with every style (or one blend of them), resumable.

:func:`make_items` turns inputs (files or directories) and styles into
:class:`Item` objects, one :class:`~styletransfer.job.Job` each;
:func:`run_batch` runs the items that are not done yet on an executor (local
processes, :class:`~styletransfer.batch.local.LocalExecutor`, or Ray actors,
:class:`~styletransfer.batch.ray_executor.RayExecutor`) and records each
outcome as one line of ``OUT_DIR/batch.jsonl``:

``{"item", "content", "styles", "output", "settings", "status", "output_sha256", "error", "steps", "seconds"}``

``settings`` is a hash of what makes the picture (the run options, the
weights, the input files' contents, the output's name).  An item whose last
record is ``complete`` with the same settings, and whose output is still the
file recorded, is skipped; any other item runs (again).  Images are written
atomically and a record is one appended line (started on a line of its own,
after a torn one), so a batch killed at any moment loses at most the items
that were running.  A batch holds ``OUT_DIR``'s lock
(:class:`~styletransfer.folder_lock.FolderLock`) while it runs: a second one
on the same folder is refused, naming the first.

A time budget (the ``time`` option, ``--time``) is each item's own: it counts
from the moment that item's optimisation starts, not from the batch's start,
so every output is done within the budget of its own start (plus the time
to save it).  Items optimised together in one group (``--group``) start
together and end by the same deadline: the group takes the budget once.

The modules: :mod:`~styletransfer.batch.items` (the items and their output
names), :mod:`~styletransfer.batch.ledger` (``batch.jsonl``: records, settings
hashes, what is done), :mod:`~styletransfer.batch.run` (the run on an
executor, the outputs written back), :mod:`~styletransfer.batch.worker`,
:mod:`~styletransfer.batch.local` and :mod:`~styletransfer.batch.ray_executor`.
"""

from .items import collect_inputs, make_items
from .ledger import LEDGER, Item, is_done, read_ledger, settings_hash
from .run import Executor, Summary, make_executor, run_batch

__all__ = [
    "LEDGER",
    "Executor",
    "Item",
    "Summary",
    "collect_inputs",
    "is_done",
    "make_executor",
    "make_items",
    "read_ledger",
    "run_batch",
    "settings_hash",
]
