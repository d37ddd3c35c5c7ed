"""The viewer's ASGI application (Starlette): two pages, a JSON API, the shipped assets.

Read-only by construction: every route answers GET (and HEAD) only, and the
handlers call nothing on the store but its reads. Pages are one static
document (static/index.html) that fetches JSON and builds the page with DOM
text nodes; the Content-Security-Policy below lets no script run but the
shipped one and no inline script at all, so even a payload that somehow
reached the document as markup could not execute.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import EventStoreError, ValidationError
from ..store import HistoryStore
from .execution_view import execution_view
from .listing import list_executions, parse_list_query

__all__ = ["LOOPBACK_HOSTS", "STATIC", "create_app"]

STATIC: Final = Path(__file__).parent / "static"

LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1", "[::1]")
"""Host headers a loopback-bound viewer answers: a page elsewhere that points
a name of its own at 127.0.0.1 (DNS rebinding) gets 400, not the histories."""

_HEADERS: Final = (
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)


class _SecurityHeaders:
    """Adds the headers above to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _execution_param(request: Request) -> int | None:
    raw = request.query_params.get("execution") or ""
    if not raw:
        return None
    if not raw.isdigit():
        raise ValidationError(f"execution must be a whole number, not {raw!r}")
    return int(raw)


def _answer(build: Callable[[], dict[str, Any] | None], missing: str = "") -> Response:
    """A handler's JSON, or the error it met as {"error": message} with its status."""
    try:
        body = build()
    except ValidationError as exc:
        return _problem(400, str(exc))
    except EventStoreError as exc:
        return _problem(500, str(exc))
    return _problem(404, missing) if body is None else JSONResponse(body)


class _Handlers:
    """The routes' handlers over one store. The JSON handlers are plain functions:
    Starlette runs them in its thread pool, so a slow read never stalls the loop."""

    def __init__(self, store: HistoryStore, heading: str) -> None:
        self.store, self.heading = store, heading

    async def page(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    def executions(self, request: Request) -> Response:
        def build() -> dict[str, Any]:
            query = parse_list_query(request.query_params)
            return {**list_executions(self.store, query), "store": self.heading}

        return _answer(build)

    def execution(self, request: Request) -> Response:
        instance = request.query_params.get("instance", "")

        def build() -> dict[str, Any] | None:
            view = execution_view(self.store, instance, _execution_param(request))
            return None if view is None else {**view, "store": self.heading}

        return _answer(build, f"no such execution of instance {instance!r} in this store")

    def last_event(self, request: Request) -> Response:
        """What a page polls while its execution runs: one indexed lookup each."""
        instance = request.query_params.get("instance", "")
        return _answer(
            lambda: {
                "last_event_id": self.store.last_event_id(instance, _execution_param(request)),
                "executions": self.store.executions(instance),
            }
        )


def create_app(
    store: HistoryStore,
    *,
    title: str | None = None,
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS,
) -> Starlette:
    """The viewer of `store`, headed `title` (its description by default).

    `allowed_hosts` ("*" for any) are the Host headers it answers.
    """
    handlers = _Handlers(store, title if title is not None else store.description)
    routes = [
        Route("/", handlers.page),
        Route("/execution", handlers.page),
        Route("/api/executions", handlers.executions),
        Route("/api/execution", handlers.execution),
        Route("/api/execution/last", handlers.last_event),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
        Middleware(_SecurityHeaders),
    ]
    return Starlette(routes=routes, middleware=middleware)
