"""The web studio's server: FastAPI on uvicorn, the HTTP API of ``styletransfer serve`` and the static page.

See ``docs/studio.md``.  The page (``static/``) is plain HTML, CSS and
JavaScript: nothing is built or fetched at run time.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import shutil
import threading
import time
import warnings
import webbrowser
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..errors import OptionError, StyleTransferError
from ..examples import EXAMPLES, example_path
from ..jobs import Job, make_job
from ..options import BY_NAME, INIT_CHOICES, OPTIONS, check_options, json_schema
from ..presets import PRESETS
from .queue import Queue, encode_jpeg
from .store import FINISHED, QUEUED, RUNNING, Store, new_id, valid_id

STATIC = Path(__file__).resolve().parent / "static"

#: Options a web request may not set: they name server paths or the server's own outputs.
SERVER_ONLY: dict[str, str] = {
    "weights": "the server uses its own weights",
    "log": "the server keeps no logs for jobs",
    "figures": "figures are not written by the studio",
    "figures_every": "figures are not written by the studio",
    "save_every": "the server keeps its own snapshot",
    "manifest": "the studio always writes the manifest",
}

#: The addresses that count as this machine: binding elsewhere needs a token.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

_MB = 1024 * 1024
ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


@dataclass
class Config:
    """How the server was started (the ``serve`` flags)."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_mb: float = 25.0
    max_size: int = 2048
    token: str | None = None
    max_pixels: int = 80_000_000  # decoded pixels of one upload: more is a decompression bomb
    run_jobs: bool = True  # False: jobs stay queued (tests of the queue)


class WebError(Exception):
    """A refused request: the status, the message and the field it is about."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


class _TooLarge(Exception):
    pass


def _now_iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def _host_names(host: str, port: int) -> set[str] | None:
    """The ``Host`` headers this server answers to; ``None`` for any (bound to every address, the token guards it)."""
    if host in ("0.0.0.0", "::", ""):
        return None
    names = {host, f"[{host}]" if ":" in host else host}
    if host in LOCAL_HOSTS:
        names |= {"127.0.0.1", "localhost", "[::1]"}
    return names | {f"{n}:{port}" for n in names}


class Guard:
    """The safety checks every request passes first (an ASGI middleware).

    ``Host`` must be the server's own (DNS rebinding); a state-changing
    request with an ``Origin`` must come from the same origin; with a token,
    a request needs it (``Authorization: Bearer``, ``?token=`` or the cookie
    the page's first load sets); a request body over the upload limit is cut
    off with 413 while it streams in.
    """

    def __init__(self, app: ASGIApp, config: Config) -> None:
        self.app, self.config = app, config
        self.hosts = _host_names(config.host, config.port)
        self.limit = int(config.max_upload_mb * _MB)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refused = self._refuse(scope, headers)
        if refused is not None:
            await refused(scope, receive, send)
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            await self._too_large()(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._too_large()(scope, receive, send)

    def _too_large(self) -> Response:
        return _error(413, f"the upload is over the limit of {self.config.max_upload_mb:g} MB", "content")

    def _refuse(self, scope: MutableMapping[str, Any], headers: dict[str, str]) -> Response | None:
        host = headers.get("host", "")
        if self.hosts is not None and host.lower() not in self.hosts:
            return _error(400, f"unknown Host {host!r}: this server answers only to its own address")
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and origin is not None:
            if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
                return _error(403, f"requests from {origin} may not change anything here")
        token = self.config.token
        if token is not None and not self._has_token(scope, headers, token):
            return _error(401, "this server needs its token: open the URL it printed, or send Authorization: Bearer")
        return None

    @staticmethod
    def _has_token(scope: MutableMapping[str, Any], headers: dict[str, str], token: str) -> bool:
        given: list[str] = []
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given.append(auth[7:].strip())
        given += parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "studio_token":
                given.append(value)
        return any(hmac.compare_digest(g.encode(), token.encode()) for g in given)


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": message}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status)


# --- Checking a new job -------------------------------------------------------------------------

_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}


def check_image(path: Path, field: str, max_pixels: int) -> str:
    """Decode an upload fully; its file extension.  422 naming ``field`` for anything that is not a usable image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise WebError(
                        422, f"{field}: {w}x{h} is {w * h:,} pixels, over the limit of {max_pixels:,}", field
                    )
                im.load()
                fmt = im.format or ""
    except WebError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise WebError(422, f"{field}: the image is too large to decode (a decompression bomb?)", field) from None
    except Exception:
        raise WebError(422, f"{field}: not an image that can be read (PNG, JPEG, WebP...)", field) from None
    if fmt not in _EXTENSIONS:
        raise WebError(422, f"{field}: {fmt} images are not accepted; use PNG, JPEG or WebP", field)
    return _EXTENSIONS[fmt]


def check_request_options(options: Any, max_size: int) -> dict[str, Any]:
    """The ``options`` object of a request, checked: known keys, types and ranges, nothing that names a path."""
    if not isinstance(options, dict):
        raise WebError(422, "options: must be a JSON object of option names and values", "options")
    for name in options:
        if name not in BY_NAME:
            raise WebError(422, f"{name}: unknown option; known options: {', '.join(BY_NAME)}", str(name))
        if name in SERVER_ONLY:
            raise WebError(422, f"{name}: not available in the studio ({SERVER_ONLY[name]})", name)
    try:
        given = check_options(options)
    except OptionError as exc:
        raise WebError(422, exc.render(), exc.option) from None
    init = given.get("init")
    if init is not None and init not in INIT_CHOICES:
        raise WebError(422, f"init: choose from {', '.join(INIT_CHOICES)} (the studio takes no paths)", "init")
    return given


def _stops_early(stored: str) -> bool | None:
    """Whether a stored job's preset may stop before its total (which is then a cap).

    ``None`` for a job that no longer reads (stored by another version with an
    option this one refuses): the list of jobs still shows it.
    """
    try:
        return Job.from_json(stored).preset().stops_early
    except (StyleTransferError, ValueError, TypeError):
        return None


class Studio:
    """The server's state: its store, its queue and how it was started."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(config.data_dir)
        self.queue = Queue(self.store)
        self._estimates: dict[str, dict[str, Any]] = {}
        self._estimate_lock = threading.Lock()

    def start(self) -> None:
        self.store.requeue_running()
        if self.config.run_jobs:
            self.queue.start()

    def stop(self) -> None:
        self.queue.stop()
        self.store.close()

    def job_json(self, row: dict[str, Any]) -> dict[str, Any]:
        step, total, loss = row["step"], row["total"], row["loss"]
        eta = None
        live = self.queue.live.get(row["id"]) if row["status"] == RUNNING else None
        if live is not None and live.progress is not None:
            step, total, loss, eta = live.step, live.total, live.progress["loss"], live.progress["eta_seconds"]
        return {
            "id": row["id"],
            "status": row["status"],
            "step": step,
            "total": total,
            "loss": loss,
            "eta_seconds": eta,
            "error": row["error"],
            "options": json.loads(row["options"]),
            "created": _now_iso(row["created"]),
            "finished": _now_iso(row["finished"]),
            "has_result": bool(row["has_result"]),
            "styles": row["styles"],
            "stop_rule": _stops_early(row["job"]),
        }

    def row(self, job_id: str) -> dict[str, Any]:
        row = self.store.get(job_id) if valid_id(job_id) else None
        if row is None:
            raise WebError(404, f"no job {job_id!r}")
        return row

    def create(self, content: Path, styles: list[Path], options: dict[str, Any], folder: Path, job_id: str) -> str:
        """Check the saved uploads and options, then move the folder into place and queue the job."""
        given = check_request_options(options, self.config.max_size)
        names = ["content" + check_image(content, "content", self.config.max_pixels)]
        for i, s in enumerate(styles):
            names.append(f"style{i}" + check_image(s, "style", self.config.max_pixels))
        for path, name in zip([content, *styles], names):
            path.rename(folder / name)
        final = self.store.folder(job_id)
        try:
            job = make_job(final / names[0], [final / n for n in names[1:]], final / "result.png", **given)
            job.options["manifest"] = True
            if job.options["size"] > self.config.max_size:
                raise WebError(
                    422, f"size: {job.options['size']} is over this server's limit of {self.config.max_size}", "size"
                )
            from ..losses import blend_weights

            blend_weights(job.options["style_blend"], len(styles))
        except OptionError as exc:
            raise WebError(422, exc.render(), exc.option) from None
        self.store.add(job_id, folder, str(job.options["device"]), given_json(given), job.to_json(), len(styles))
        if self.config.run_jobs:
            self.queue.kick(str(job.options["device"]))
        return job_id

    def estimate(self, query: list[tuple[str, str]]) -> dict[str, Any]:
        """The engine's plan for the options in ``query`` and a content of ``width`` x ``height``."""
        values: dict[str, Any] = {}
        width, height, styles = 512, 384, 1
        for key, text in query:
            if key in ("width", "height", "styles"):
                if not text.isdigit() or not 1 <= int(text) <= 20000:
                    raise WebError(422, f"{key}: must be a whole number from 1 to 20000, not {text!r}", key)
                width, height, styles = (
                    int(text) if key == "width" else width,
                    int(text) if key == "height" else height,
                    int(text) if key == "styles" else styles,
                )
                continue
            if key == "token":
                continue
            opt = BY_NAME.get(key)
            if opt is None:
                raise WebError(422, f"{key}: unknown option", key)
            if key in SERVER_ONLY:
                raise WebError(422, f"{key}: not available in the studio ({SERVER_ONLY[key]})", key)
            try:
                if opt.many:
                    items = [opt.parse_one(t) for t in text.split(",") if t.strip()]
                    values[key] = opt.check(items)
                elif opt.type == "bool":
                    values[key] = text.lower() in ("1", "true", "yes")
                else:
                    values[key] = opt.parse_one(text)
            except OptionError as exc:
                raise WebError(422, exc.render(), exc.option) from None
        given = check_request_options(values, self.config.max_size)
        if given.get("size", 0) > self.config.max_size:
            raise WebError(422, f"size: over this server's limit of {self.config.max_size}", "size")
        key = json.dumps([sorted((k, repr(v)) for k, v in given.items()), width, height, styles])
        with self._estimate_lock:
            if key in self._estimates:
                return self._estimates[key]
            from ..api import plan

            content = Image.open(example_path("tubingen.jpg")).convert("RGB").resize((width, height))
            style = Image.open(example_path("starry_night.jpg")).convert("RGB")
            try:
                found = plan(content, [style] * styles, **given)
            except OptionError as exc:
                raise WebError(422, exc.render(), exc.option) from None
            self._estimates[key] = found
            return found


def given_json(given: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in given.items()}


def create_app(config: Config) -> FastAPI:
    """The studio's application (the server state is created now; its runners start with the app)."""
    studio = Studio(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        studio.start()
        try:
            yield
        finally:
            await run_in_threadpool(studio.stop)

    app = FastAPI(title="styletransfer studio", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.studio = studio

    @app.exception_handler(WebError)
    async def web_error(request: Request, exc: WebError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.field)

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
            "options": [o.describe() | {"web": o.name not in SERVER_ONLY} for o in OPTIONS],
            "presets": {name: given_json(asdict(p)) for name, p in PRESETS.items()},
            "schema": json_schema(),
            "max_size": config.max_size,
            "max_upload_mb": config.max_upload_mb,
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
        job_id = new_id()
        folder = config.data_dir / "tmp" / job_id
        folder.mkdir(parents=True)
        try:
            try:
                form = await request.form(max_files=32, max_fields=16)
            except _TooLarge:
                raise WebError(413, f"the upload is over the limit of {config.max_upload_mb:g} MB", "content") from None
            except Exception as exc:
                raise WebError(422, f"the request is not a multipart form: {exc}", "content") from None
            try:
                content = form.getlist("content")
                styles = form.getlist("style")
                if len(content) != 1 or not isinstance(content[0], UploadFile):
                    raise WebError(422, "content: give exactly one content image file", "content")
                if not styles or not all(isinstance(s, UploadFile) for s in styles):
                    raise WebError(422, "style: give one or more style image files", "style")
                if len(styles) > 16:
                    raise WebError(422, "style: at most 16 style images", "style")
                unknown = set(form.keys()) - {"content", "style", "options"}
                if unknown:
                    name = sorted(unknown)[0]
                    raise WebError(422, f"{name}: unknown form field; send content, style and options", name)
                raw = form.get("options") or "{}"
                if not isinstance(raw, str):
                    raise WebError(422, "options: must be a JSON object, not a file", "options")
                try:
                    options = json.loads(raw)
                except ValueError as exc:
                    raise WebError(422, f"options: not valid JSON ({exc})", "options") from None
                paths = []
                for i, upload in enumerate([content[0], *styles]):
                    assert isinstance(upload, UploadFile)
                    path = folder / f"upload{i}"
                    await run_in_threadpool(_copy, upload, path)
                    paths.append(path)
                await run_in_threadpool(studio.create, paths[0], paths[1:], options, folder, job_id)
            finally:
                await form.close()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return JSONResponse({"id": job_id, "status": QUEUED}, status_code=201)

    @app.get("/api/jobs")
    async def jobs() -> dict[str, Any]:
        return {"jobs": [studio.job_json(r) for r in studio.store.all()]}

    @app.get("/api/jobs/{job_id}")
    async def job(job_id: str) -> dict[str, Any]:
        return studio.job_json(studio.row(job_id))

    @app.get("/api/jobs/{job_id}/events")
    async def events(job_id: str, request: Request) -> StreamingResponse:
        studio.row(job_id)

        async def stream() -> AsyncIterator[str]:
            last = -1
            watched = False  # whether this stream saw the job before it ended
            while True:
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
                await asyncio.sleep(0.25)  # at most 4 events a second

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    @app.get("/api/jobs/{job_id}/preview.jpg")
    def preview(job_id: str) -> Response:
        row = studio.row(job_id)
        live = studio.queue.live.get(job_id)
        if live is not None and live.tensor is not None:
            step, tensor = live.step, live.tensor
            if live.preview is None or live.preview[0] != step:
                from ..images import to_pil

                live.preview = (step, encode_jpeg(to_pil(tensor)))
            return Response(live.preview[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"})
        folder = studio.store.folder(job_id)
        cached = folder / "preview.jpg"
        if row["has_result"] and (folder / "result.png").is_file():
            if not cached.is_file():
                with Image.open(folder / "result.png") as im:
                    data = encode_jpeg(im)
                from ..fileio import save_file_atomically

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

    app.add_middleware(Guard, config=config)
    return app


def _copy(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with open(path, "wb") as f:
        shutil.copyfileobj(upload.file, f, 1 << 20)


def _input(folder: Path, stem: str) -> Response:
    for ext in _EXTENSIONS.values():
        path = folder / (stem + ext)
        if path.is_file():
            return FileResponse(path)
    raise WebError(404, f"no {stem} image")


def default_data_dir() -> Path:
    """The platform's user data directory for the studio."""
    import platformdirs

    return Path(platformdirs.user_data_dir("styletransfer", appauthor=False))


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    data_dir: str | Path | None = None,
    max_upload_mb: float = 25.0,
    max_size: int = 2048,
    token: str | None = None,
    open_browser: bool = False,
) -> int:
    """Run the studio until Ctrl-C (``styletransfer serve``); prints its URL first."""
    import secrets

    import uvicorn

    if host not in LOCAL_HOSTS and token is None:
        token = secrets.token_urlsafe(24)
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    config = Config(directory, host, port, max_upload_mb, max_size, token)
    app = create_app(config)
    shown = host if host not in ("0.0.0.0", "::") else "127.0.0.1"
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    print(f"styletransfer studio: {url}  (data in {directory}; Ctrl-C stops it)", flush=True)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, [url]).start()
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


__all__ = ["Config", "StyleTransferError", "create_app", "serve"]
