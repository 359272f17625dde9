"""The safety checks every studio request passes first: an ASGI middleware in front of the application.

Host (DNS rebinding), Origin, ``Sec-Fetch-Site``, the token, the upload
limit while the body streams in, and the headers that forbid framing.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi.responses import JSONResponse, Response

#: The addresses that count as this machine: binding elsewhere needs a token.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

_MB = 1024 * 1024
ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]

#: The ``Sec-Fetch-Site`` values of requests the API answers (a browser sends it; other clients need not).
SAME_SITE = ("same-origin", "none")

#: Headers on every answer: no page may frame the studio (clickjacking).
FRAME_HEADERS = [(b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'")]


class TooLarge(Exception):
    """The request body passed the upload limit while it streamed in."""


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
    request with an ``Origin`` must come from the same origin; an API request
    a browser marks as cross-site (``Sec-Fetch-Site``) is refused, so a
    foreign page's ``<img>`` cannot start an estimate; with a token,
    a request needs it (``Authorization: Bearer``, ``?token=`` or the cookie
    the page's first load sets); a request body over the upload limit is cut
    off with 413 while it streams in.  Every answer forbids framing.
    """

    def __init__(self, app: ASGIApp, *, host: str, port: int, max_upload_mb: float, token: str | None) -> None:
        self.app, self.max_upload_mb, self.token = app, max_upload_mb, token
        self.hosts = _host_names(host, port)
        self.limit = int(max_upload_mb * _MB)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def guarded_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = dict(message, headers=[*message.get("headers", []), *FRAME_HEADERS])
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refused = self._refuse(scope, headers)
        if refused is not None:
            await refused(scope, receive, guarded_send)
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            await self._too_large()(scope, receive, guarded_send)
            return
        seen = 0

        async def counting_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise TooLarge
            return message

        try:
            await self.app(scope, counting_receive, guarded_send)
        except TooLarge:
            if not started:
                await self._too_large()(scope, receive, guarded_send)

    def _too_large(self) -> Response:
        return error_response(413, f"the upload is over the limit of {self.max_upload_mb:g} MB", "content")

    def _refuse(self, scope: MutableMapping[str, Any], headers: dict[str, str]) -> Response | None:
        host = headers.get("host", "")
        if self.hosts is not None and host.lower() not in self.hosts:
            return error_response(400, f"unknown Host {host!r}: this server answers only to its own address")
        fetch_site = headers.get("sec-fetch-site")
        if scope["path"].startswith("/api/") and fetch_site is not None and fetch_site not in SAME_SITE:
            return error_response(403, f"a {fetch_site} request may not use this API (Sec-Fetch-Site)")
        origin = headers.get("origin")
        changes = scope["method"] not in ("GET", "HEAD", "OPTIONS")
        if changes and origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != host.lower()):
            return error_response(403, f"requests from {origin} may not change anything here")
        token = self.token
        if token is not None and not self._has_token(scope, headers, token):
            return error_response(
                401, "this server needs its token: open the URL it printed, or send Authorization: Bearer"
            )
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


def error_response(status: int, message: str, field: str | None = None) -> JSONResponse:
    """A refusal as JSON: ``{"detail": message, "field": name or null}``."""
    return JSONResponse({"detail": message, "field": field}, status_code=status)


__all__ = ["LOCAL_HOSTS", "Guard", "TooLarge", "error_response"]
