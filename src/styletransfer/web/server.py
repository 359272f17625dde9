"""The web studio's server: FastAPI on uvicorn, the HTTP API of ``styletransfer serve`` and the static page.

See ``docs/studio.md``.  The page (``static/``) is plain HTML, CSS and
JavaScript: nothing is built or fetched at run time.  The routes are in
:mod:`.routes`, the server's state in :mod:`.studio`.
"""

from __future__ import annotations

import secrets
import threading
import webbrowser
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..errors import OptionError
from .checks import WebError
from .guard import LOCAL_HOSTS, Guard, error_response
from .routes import add_routes
from .studio import Config, Studio, default_data_dir, open_data_dir


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
    async def weberror_response(request: Request, exc: WebError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.field)

    add_routes(app, studio)

    app.add_middleware(
        Guard, host=config.host, port=config.port, max_upload_mb=config.max_upload_mb, token=config.token
    )
    return app


#: The shortest token ``serve`` takes (``secrets.token_urlsafe(24)`` makes 32 characters).
MIN_TOKEN = 16


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    data_dir: str | Path | None = None,
    max_upload_mb: float = 25.0,
    max_size: int = 2048,
    token: str | None = None,
    open_browser: bool = False,
    *,
    max_queued: int = 100,
    max_job_pixels: int = 100_000_000,
    min_free_mb: float | None = None,
) -> int:
    """Run the studio until Ctrl-C (``styletransfer serve``); prints its URL first.

    Raises:
        OptionError: a ``token`` shorter than :data:`MIN_TOKEN` characters.
        FolderBusy: another process serves the same data folder.
    """
    if token is not None and len(token) < MIN_TOKEN:
        raise OptionError("token", f"{{option}} must be at least {MIN_TOKEN} characters long, not {len(token)}")
    if host not in LOCAL_HOSTS and token is None:
        token = secrets.token_urlsafe(24)
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    lock = open_data_dir(directory)  # held until the server stops (acquired already: not a context manager here)
    try:
        config = Config(
            directory,
            host,
            port,
            max_upload_mb,
            max_size,
            token,
            max_job_pixels=max_job_pixels,
            max_queued=max_queued,
            min_free_mb=min_free_mb,
        )
        app = create_app(config)
        shown = host if host not in ("0.0.0.0", "::") else "127.0.0.1"
        shown = f"[{shown}]" if ":" in shown else shown
        url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
        print(f"styletransfer studio: {url}  (data in {directory}; Ctrl-C stops it)", flush=True)
        if open_browser:
            threading.Timer(1.0, webbrowser.open, [url]).start()
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    finally:
        lock.release()
    return 0


__all__ = ["Config", "create_app", "open_data_dir", "serve"]
