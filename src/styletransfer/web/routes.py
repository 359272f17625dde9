"""The studio's HTTP routes: the page, the API of ``docs/studio.md`` and a job's event stream.

:func:`add_routes` registers them on the app, answering from a :class:`~.studio.Studio`;
a request's multipart form is read by :mod:`.forms`, its files then checked by the studio.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from ..errors import MissingExtra, OptionError, StyleTransferError
from ..examples import EXAMPLES, example_path
from ..fileio import save_file_atomically
from ..images import to_pil
from ..options import OPTIONS, json_schema
from ..presets import INSTANT_OPTIONS, PRESETS
from .checks import EXTENSIONS, INSTANT_FIELDS, MAX_STYLES, WEB_OPTIONS, WebError, bounded_int
from .forms import form_options, instant_inputs, job_uploads
from .guard import TooLarge
from .instant import FORMATS, Picture
from .queue import encode_jpeg
from .store import FINISHED, QUEUED, new_id
from .studio import Studio, given_json

STATIC = Path(__file__).resolve().parent / "static"


#: The most jobs ``GET /api/jobs`` answers with at once, and its default.
MAX_PAGE, DEFAULT_PAGE = 200, 50


def add_routes(app: FastAPI, studio: Studio) -> None:
    """Register the page, its static files and every route of the API on ``app``, answering from ``studio``."""
    config = studio.config

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        response = FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
        token = request.query_params.get("token")
        if token is not None and config.token is not None:
            response.set_cookie("studio_token", token, httponly=True, samesite="strict")
        return response

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/options")
    async def options() -> dict[str, Any]:
        return {
            "instant_options": sorted(INSTANT_OPTIONS & WEB_OPTIONS),
            "options": [o.describe() | {"web": o.name in WEB_OPTIONS} for o in OPTIONS],
            "presets": {name: given_json(asdict(p)) for name, p in PRESETS.items()},
            "schema": json_schema(),
            "max_size": config.max_size,
            "max_upload_mb": config.max_upload_mb,
            "max_styles": MAX_STYLES,
            "max_pixels": config.max_pixels,
            "max_job_pixels": config.max_job_pixels,
            "examples": list(EXAMPLES),
        }

    @app.get("/api/examples/{name}")
    async def example(name: str) -> Response:
        if name not in EXAMPLES:
            raise WebError(404, f"no bundled example {name!r}")
        return FileResponse(example_path(name), media_type="image/jpeg")

    @app.get("/api/estimate")
    def estimate(request: Request) -> dict[str, Any]:
        return studio.estimate(list(request.query_params.multi_items()))

    @app.post("/api/jobs", status_code=201)
    async def create(request: Request) -> JSONResponse:
        await run_in_threadpool(studio.check_room)  # before a byte of the upload is stored
        job_id = new_id()
        folder = config.data_dir / "tmp" / job_id
        folder.mkdir(parents=True)
        try:
            try:
                form = await request.form(max_files=3 * MAX_STYLES + 2, max_fields=16)
            except TooLarge:
                raise WebError(413, f"the upload is over the limit of {config.max_upload_mb:g} MB", "content") from None
            except Exception as exc:
                raise WebError(422, f"the request is not a multipart form: {exc}", "content") from None
            try:
                options = form_options(form)
                given = await job_uploads(form, folder)
                await run_in_threadpool(studio.create, given, options, folder, job_id)
            finally:
                await form.close()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return JSONResponse({"id": job_id, "status": QUEUED}, status_code=201)

    @app.post("/api/instant")
    async def instant(request: Request) -> Response:
        """The instant preset's picture, answered at once (JPEG, or PNG with ``?format=png``); nothing is kept."""
        fmt = "jpeg"
        for key, text in request.query_params.multi_items():
            if key == "format" and text in FORMATS:
                fmt = text
            elif key != "token":
                raise WebError(422, f"{key}: unknown parameter; use format=jpeg or format=png", key)
        received = time.perf_counter()
        await run_in_threadpool(studio.check_disk)  # before a byte of the upload is stored
        studio.instant.admit()
        folder = config.data_dir / "tmp" / ("instant-" + new_id())
        folder.mkdir(parents=True)
        try:
            try:
                form = await request.form(max_files=MAX_STYLES + 1, max_fields=MAX_STYLES + 4)
            except TooLarge:
                raise WebError(413, f"the upload is over the limit of {config.max_upload_mb:g} MB", "content") from None
            except Exception as exc:
                raise WebError(422, f"the request is not a multipart form: {exc}", "content") from None
            try:
                options = form_options(form, INSTANT_FIELDS)
                content, styles = await instant_inputs(form, folder)
                job = await run_in_threadpool(studio.instant_job, content, styles, options)
            finally:
                await form.close()
            try:
                picture: Picture = await studio.instant.run(job, fmt)
            except MissingExtra as exc:
                raise WebError(503, str(exc)) from None
            except OptionError as exc:
                raise WebError(422, exc.render(), exc.option) from None
            except StyleTransferError as exc:
                raise WebError(422, str(exc)) from None
        finally:
            studio.instant.release()
            await run_in_threadpool(shutil.rmtree, folder, True)
        total = time.perf_counter() - received
        return Response(
            picture.data,
            media_type=picture.media_type,
            headers={
                "Cache-Control": "no-store",
                "X-Instant-Seconds": f"{picture.seconds:.3f}",
                "X-Image-Size": f"{picture.width}x{picture.height}",
                "Server-Timing": f"instant;dur={picture.seconds * 1000:.1f}, total;dur={total * 1000:.1f}",
            },
        )

    @app.get("/api/jobs")
    async def jobs(request: Request) -> dict[str, Any]:
        limit, before = DEFAULT_PAGE, None
        for key, text in request.query_params.multi_items():
            if key == "limit":
                limit = bounded_int(text, key, 1, MAX_PAGE)
            elif key == "before":
                before = bounded_int(text, key, 0, 2**62)
            elif key != "token":
                raise WebError(422, f"{key}: unknown parameter; use limit and before", key)
        rows = studio.store.page(limit + 1, before)
        more = len(rows) > limit
        rows = rows[:limit]
        return {"jobs": [studio.job_json(r) for r in rows], "next": rows[-1]["seq"] if more else None}

    @app.get("/api/jobs/{job_id}")
    async def job(job_id: str) -> dict[str, Any]:
        return studio.job_json(studio.row(job_id))

    @app.get("/api/jobs/{job_id}/events")
    async def events(job_id: str, request: Request) -> StreamingResponse:
        studio.row(job_id)
        number = studio.open_stream()

        async def stream() -> AsyncIterator[str]:
            try:
                async for event in _job_events(studio, job_id, request):
                    yield event
            finally:
                studio.close_stream(number)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            background=BackgroundTask(studio.close_stream, number),
        )

    @app.get("/api/jobs/{job_id}/preview.jpg")
    def preview(job_id: str) -> Response:
        row = studio.row(job_id)
        live = studio.queue.live.get(job_id)
        if live is not None and live.tensor is not None:
            step, tensor = live.step, live.tensor
            if live.preview is None or live.preview[0] != step:
                live.preview = (step, encode_jpeg(to_pil(tensor)))
            return Response(live.preview[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"})
        folder = studio.store.folder(job_id)
        cached = folder / "preview.jpg"
        if row["has_result"] and (folder / "result.png").is_file():
            if not cached.is_file():
                with Image.open(folder / "result.png") as im:
                    data = encode_jpeg(im)
                save_file_atomically(cached, lambda f: f.write(data))
            return FileResponse(cached, media_type="image/jpeg")
        raise WebError(404, f"job {job_id} has no image yet ({row['status']})")

    @app.get("/api/jobs/{job_id}/result.png")
    async def result(job_id: str) -> Response:
        row = studio.row(job_id)
        path = studio.store.folder(job_id) / "result.png"
        if not row["has_result"] or not path.is_file():
            raise WebError(404, f"job {job_id} has no result ({row['status']})")
        return FileResponse(path, media_type="image/png", filename=f"styletransfer-{job_id}.png")

    @app.get("/api/jobs/{job_id}/manifest.json")
    async def manifest(job_id: str) -> Response:
        row = studio.row(job_id)
        path = studio.store.folder(job_id) / "result.png.json"  # the manifest beside the output
        if not row["has_result"] or not path.is_file():
            raise WebError(404, f"job {job_id} has no manifest ({row['status']})")
        return FileResponse(path, media_type="application/json", filename=f"styletransfer-{job_id}.json")

    @app.get("/api/jobs/{job_id}/content")
    async def content(job_id: str) -> Response:
        studio.row(job_id)
        return _input(studio.store.folder(job_id), "content")

    @app.get("/api/jobs/{job_id}/style/{index}")
    async def style(job_id: str, index: int) -> Response:
        row = studio.row(job_id)
        if not 0 <= index < row["styles"]:
            raise WebError(404, f"job {job_id} has no style {index}")
        return _input(studio.store.folder(job_id), f"style{index}")

    @app.post("/api/jobs/{job_id}/cancel")
    async def cancel(job_id: str) -> dict[str, Any]:
        row = studio.row(job_id)
        if row["status"] == QUEUED and studio.store.cancel_queued(job_id):
            return studio.job_json(studio.row(job_id))
        if row["status"] in FINISHED:
            raise WebError(409, f"job {job_id} has already ended ({row['status']})")
        deadline = time.monotonic() + 2.0
        while not studio.queue.cancel(job_id) and time.monotonic() < deadline:  # claimed, not yet started
            if studio.row(job_id)["status"] in FINISHED:
                break
            await asyncio.sleep(0.05)
        return studio.job_json(studio.row(job_id)) | {"cancelling": True}

    @app.delete("/api/jobs/{job_id}", status_code=204)
    async def delete(job_id: str) -> Response:
        row = studio.row(job_id)
        if row["status"] not in FINISHED or not studio.store.delete(job_id):
            raise WebError(409, f"job {job_id} is {row['status']}; cancel it first")
        return Response(status_code=204)


async def _job_events(studio: Studio, job_id: str, request: Request) -> AsyncIterator[str]:
    """A job's Server-Sent Events: progress at most 4 times a second, then its end.

    The stream ends after ``stream_seconds`` without an end event; the page's
    ``EventSource`` then connects again (after ``retry`` ms), so no stream
    holds the server forever.
    """
    yield "retry: 1000\n\n"
    deadline = time.monotonic() + studio.config.stream_seconds
    last = -1
    watched = False  # whether this stream saw the job before it ended
    while time.monotonic() < deadline:
        row = studio.store.get(job_id)
        if row is None:
            return
        if row["status"] in FINISHED:
            final = studio.queue.last_progress.get(job_id)
            if watched and final is not None and final["step"] != last:  # a short job's last step, unsent
                yield f"event: progress\ndata: {json.dumps(final)}\n\n"
            yield f"event: {row['status']}\ndata: {json.dumps(studio.job_json(row))}\n\n"
            return
        watched = True
        live = studio.queue.live.get(job_id)
        if live is not None and live.progress is not None and live.step != last:
            last = live.step
            yield f"event: progress\ndata: {json.dumps(live.progress)}\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.25)


def _input(folder: Path, stem: str) -> Response:
    for ext in EXTENSIONS:
        path = folder / (stem + ext)
        if path.is_file():
            return FileResponse(path)
    raise WebError(404, f"no {stem} image")
