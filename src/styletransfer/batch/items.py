"""A batch's items: the content images found, each with every style (or the blend of all), and their output names.

An output name is a pattern (:data:`~styletransfer.options.BATCH_NAME`) with ``{stem}``,
``{style}`` and ``{index}``; it must give every item its own file inside the
output directory, and none of the batch's own files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import OptionError
from ..fileio import regular_file
from ..folder_lock import LOCK_NAME
from ..job import make_job
from ..options import BATCH_NAME
from .ledger import LEDGER, Item, settings_hash

#: What a directory contributes as content images (by extension, case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")


def collect_inputs(inputs: Sequence[str | os.PathLike[str]], recursive: bool = False) -> list[Path]:
    """The content images: files as given, directories' image files (sorted; ``recursive`` descends).

    Raises:
        OptionError: on ``inputs``, for a path that does not exist, or when nothing is found.
        InputError: a path given that is not a regular file (a FIFO, a device); in directories those are skipped.
    """
    found: list[Path] = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found += sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            found.append(regular_file(path, "an image file or a directory"))
        else:
            raise OptionError("inputs", f"{path}: no such file or directory")
    if not found:
        raise OptionError("inputs", f"no images in {', '.join(str(p) for p in inputs)}")
    return list(dict.fromkeys(found))


def make_items(
    inputs: Sequence[str | os.PathLike[str]],
    styles: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    name: str = BATCH_NAME,
    recursive: bool = False,
    **options: Any,
) -> list[Item]:
    """Every item of a batch: each content with each style, or with the blend of all when ``style_blend`` is given.

    ``name`` may use ``{stem}`` (the content's), ``{style}`` (the style's stem,
    or the styles' joined by ``+`` for a blend) and ``{index}``.

    Raises:
        OptionError: a bad option, a missing input, a name that gives two items one output or leaves ``out_dir``.
        InputError: a style or an input given that is not a regular file (a FIFO, a device).
    """
    if not styles:
        raise OptionError("style", "at least one style image is needed")
    for s in styles:
        regular_file(s, "an image file")  # every item would wait on a FIFO, or fail the same way
    contents = collect_inputs(inputs, recursive)
    out = Path(out_dir)
    groups: list[list[str]] = (
        [[str(s) for s in styles]] if options.get("style_blend") is not None else [[str(s)] for s in styles]
    )
    items: list[Item] = []
    seen: dict[str, Path] = {}
    for index, content in enumerate(contents):
        for group in groups:
            try:
                filename = name.format(stem=content.stem, style="+".join(Path(s).stem for s in group), index=index)
            except (KeyError, IndexError, ValueError) as exc:
                raise OptionError(
                    "name", f"{{option}} {name!r}: {exc}; use {{{{stem}}}}, {{{{style}}}}, {{{{index}}}}"
                ) from None
            if filename in seen:
                raise OptionError(
                    "name",
                    f"{{option}} {name!r} gives {content} and {seen[filename]} the same output {filename}; "
                    "add {index} to the name",
                )
            _check_inside(out, filename, name)
            seen[filename] = content
            job = make_job(content, group, out / filename, **options)
            items.append(Item(filename, job, settings_hash(job, filename)))
    return items


def _check_inside(out: Path, filename: str, name: str) -> None:
    """Refuse an output name that leaves ``out`` (``../``, an absolute path, a link out) or takes the batch's own files.

    Raises:
        OptionError: on ``name``.
    """
    root = out.resolve()
    target = (out / filename).resolve()
    if target == root or root not in target.parents:
        raise OptionError(
            "name", f"{{option}} {name!r} gives {filename}, outside the output directory {out}; name a file inside it"
        )
    if target.parent == root and target.name in (LEDGER, LOCK_NAME):
        raise OptionError("name", f"{{option}} {name!r} gives {filename}, the batch's own file; choose another name")
