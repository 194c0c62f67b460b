"""Middleware broken on purpose, one defect each, for ``python -m middleware check``
to find (tests/test_check.py), and wrappers that make the anchors' middleware
``app -> app`` where they take more than the app."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from middleware.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


def no_close(app: WSGIApplication) -> WSGIApplication:
    """Re-yields the app's body and never calls its ``close()``."""

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        result = app(environ, start_response)

        def body() -> Iterator[bytes]:
            yield from result  # no try/finally: result.close() is never called

        return body()

    return wrapped


def early_start(app: WSGIApplication) -> WSGIApplication:
    """Calls the server's start_response before the app does, and gives the app
    a start_response that only hands back the server's write()."""

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        write = start_response("200 OK", [("Content-Type", "text/plain")])

        def late(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            return write  # the app's status and headers are lost

        return app(environ, late)

    return wrapped


def drops_exc_info(app: WSGIApplication) -> WSGIApplication:
    """Forwards start_response without its exc_info."""

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        def forward(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            return start_response(status, headers)

        return app(environ, forward)

    return wrapped


def loses_write(app: WSGIApplication) -> WSGIApplication:
    """Gives the app a write() that keeps nothing (it meant to buffer it)."""

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        kept: list[bytes] = []

        def forward(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            start_response(status, headers, exc_info)
            return kept.append  # buffered, and never sent

        return app(environ, forward)

    return wrapped


def body_on_head(app: WSGIApplication) -> WSGIApplication:
    """Answers HEAD itself, with a body and a length of its own."""

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        if environ["REQUEST_METHOD"] != "HEAD":
            return app(environ, start_response)
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")]
        )
        return [b"ok"]

    return wrapped


class SharedState:
    """Keeps the request's start_response on the instance, shared by every
    thread: a request answers through whichever came last."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        self.start_response = start_response

        def forward(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            return self.start_response(status, headers, exc_info)

        return self.app(environ, forward)


def not_a_middleware(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
    """A WSGI app, not a middleware: check refuses it."""
    start_response("200 OK", [])
    return [b""]


def refuses_to_wrap(app: WSGIApplication) -> WSGIApplication:
    raise RuntimeError("no app suits me")


NOT_CALLABLE = 42


# -- the anchors that take more than the app ----------------------------------------


def paste_auth_basic(app: WSGIApplication) -> WSGIApplication:
    """Paste's AuthBasicHandler, letting alice in (check it with her credentials
    in ``--environ HTTP_AUTHORIZATION=...``)."""
    from paste.auth.basic import AuthBasicHandler

    def authfunc(environ: WSGIEnvironment, user: str, password: str) -> bool:
        return (user, password) == ("alice", "wonderland")

    handler: WSGIApplication = AuthBasicHandler(app, "kit", authfunc)
    return handler
