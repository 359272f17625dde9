"""Reading the multipart forms of ``POST /api/jobs`` and ``POST /api/instant``: fields checked, files saved.

The files are saved as they came (``upload-FIELD-N``, unchecked): the studio
checks them (:meth:`~.studio.Studio.create`, :meth:`~.studio.Studio.instant_job`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..examples import EXAMPLES, example_path
from .checks import FORM_FIELDS, MAX_STYLES, WebError
from .studio import Uploads


def form_options(form: Any, fields: tuple[str, ...] = FORM_FIELDS) -> dict[str, Any]:
    """The form's ``options`` field as a JSON object (not yet checked); 422 naming a field not in ``fields``."""
    unknown = set(form.keys()) - set(fields)
    if unknown:
        name = sorted(unknown)[0]
        raise WebError(422, f"{name}: unknown form field; send {', '.join(fields)}", name)
    raw = form.get("options") or "{}"
    if not isinstance(raw, str):
        raise WebError(422, "options: must be a JSON object, not a file", "options")
    try:
        options = json.loads(raw)
    except ValueError as exc:
        raise WebError(422, f"options: not valid JSON ({exc})", "options") from None
    if not isinstance(options, dict):
        raise WebError(422, "options: must be a JSON object of option names and values", "options")
    return options


async def job_uploads(form: Any, folder: Path) -> Uploads:
    """A new job's files: every file field checked (their numbers), then each file saved under ``folder``."""
    files = {name: _form_files(form, name) for name in FORM_FIELDS if name != "options"}
    saved: dict[str, list[Path]] = {}
    for name, uploads in files.items():
        saved[name] = []
        for i, upload in enumerate(uploads):
            path = folder / f"upload-{name}-{i}"
            await run_in_threadpool(_copy, upload, path)
            saved[name].append(path)
    return Uploads(
        saved["content"][0],
        saved["style"],
        saved["mask"],
        saved["style_mask"],
        saved["fine_style"][0] if saved["fine_style"] else None,
    )


def _form_files(form: Any, name: str) -> list[UploadFile]:
    """The files of one form field, their number checked; 422 naming the field."""
    found = form.getlist(name)
    if not all(isinstance(f, UploadFile) for f in found):
        raise WebError(422, f"{name}: must be an image file, not text", name)
    styles = len(form.getlist("style"))
    if name == "content" and len(found) != 1:
        raise WebError(422, "content: give exactly one content image file", "content")
    if name == "style" and not found:
        raise WebError(422, "style: give one or more style image files", "style")
    if name == "style" and len(found) > MAX_STYLES:
        raise WebError(422, f"style: at most {MAX_STYLES} style images", "style")
    if name in ("mask", "style_mask") and found and len(found) != styles:
        raise WebError(422, f"{name}: give one {name} per style image ({styles}), not {len(found)}", name)
    if name == "fine_style" and len(found) > 1:
        raise WebError(422, "fine_style: give at most one fine-style image", "fine_style")
    return list(found)


async def instant_inputs(form: Any, folder: Path) -> tuple[Path, list[Path]]:
    """An instant request's content and styles: uploads saved under ``folder``, or bundled examples by name.

    An example is named, never a path: a name not in the bundled list is 422.
    """
    found: dict[str, list[Path]] = {}
    for name in ("content", "style"):
        uploads = form.getlist(name)
        examples = form.getlist(name + "_example")
        if not all(isinstance(f, UploadFile) for f in uploads):
            raise WebError(422, f"{name}: must be an image file, not text", name)
        if not all(isinstance(e, str) for e in examples):
            raise WebError(422, f"{name}_example: must be the name of a bundled example, not a file", name + "_example")
        for e in examples:
            if e not in EXAMPLES:
                raise WebError(
                    422, f"{name}_example: no bundled example {e[:60]!r}; choose from {', '.join(EXAMPLES)}", name
                )
        paths = [example_path(e) for e in examples]
        for i, upload in enumerate(uploads):
            path = folder / f"upload-{name}-{i}"
            await run_in_threadpool(_copy, upload, path)
            paths.append(path)
        found[name] = paths
    if len(found["content"]) != 1:
        raise WebError(422, "content: give exactly one content image (a file, or content_example)", "content")
    if not found["style"]:
        raise WebError(422, "style: give one or more style images (files, or style_example)", "style")
    if len(found["style"]) > MAX_STYLES:
        raise WebError(422, f"style: at most {MAX_STYLES} style images", "style")
    return found["content"][0], found["style"]


def _copy(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with open(path, "wb") as f:
        shutil.copyfileobj(upload.file, f, 1 << 20)
