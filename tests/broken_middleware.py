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


# -- shapes that are not broken: check must take them as they are ---------------------


class AppOptional:
    """A middleware class whose app is optional (``Mw(app=None)``)."""

    def __init__(self, app: WSGIApplication | None = None, level: int = 1) -> None:
        self.app = app
        self.level = level

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        assert self.app is not None
        return self.app(environ, start_response)


def chatty(app: WSGIApplication) -> WSGIApplication:
    """Prints on standard output for each request: --json must stay JSON."""

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        print("a request!")
        return app(environ, start_response)

    return wrapped


def holds_back(app: WSGIApplication) -> WSGIApplication:
    """A correct streaming compressor that yields b"" while zlib holds the bytes,
    and sends them all at the end (PEP 3333 allows it)."""
    import zlib

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        coded: list[bool] = []

        def forward(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            plain = environ["REQUEST_METHOD"] == "HEAD" or status[:3] in ("204", "304")
            if not plain and "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
                headers = [h for h in headers if h[0].lower() != "content-length"]
                headers.append(("Content-Encoding", "gzip"))
                coded.append(True)
            return start_response(status, headers, exc_info)

        result = app(environ, forward)

        def body() -> Iterator[bytes]:
            coder = zlib.compressobj(wbits=31)
            held = []
            try:
                for chunk in result:
                    if not coded:
                        yield chunk
                        continue
                    held.append(coder.compress(chunk))
                    yield b""  # held back
                if coded:
                    yield b"".join(held) + coder.flush()
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

        return body()

    return wrapped


class Holder:
    @property
    def middleware(self) -> Any:
        raise RuntimeError("no middleware today")


holder = Holder()
