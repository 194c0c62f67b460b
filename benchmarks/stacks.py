"""The two full stacks the stack benchmark compares, around the same apps.

- **ours**: ``compose(app, AccessLog(), ErrorCatcher(), Gzip(), BasicAuth(),
  Session(), StaticFiles())``, the demo's order (outermost first).
- **anchors**: what a user would assemble from the older libraries, in the same
  order: Paste's TransLogger, ErrorMiddleware (``debug=False``), gzipper and
  AuthBasicHandler, Beaker's cookie SessionMiddleware (``validate_key``, JSON: its
  safe configuration) and WhiteNoise.

Credentials: ours reads a bcrypt (cost 10) htpasswd entry, so a valid request is
served from its cache of verified credentials; Paste is given a plain comparison
(its best case, no hashing at all). Both access logs write through the stdlib to
a handler that formats each line and keeps nothing.

The apps, as plain WSGI (in-process) and as Flask (under gunicorn): ``/`` reads
the user from the session and answers a 1 KB HTML page (so both gzips compress it),
``/login`` writes the session, to get a cookie.

For gunicorn: ``gunicorn 'stacks:flask_app("ours")'`` (or ``"anchors"``,
``"bare"``) from this directory.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from beaker.middleware import SessionMiddleware
from bench_gzip import html
from harness import DiscardingStream, discarding_logger
from paste.auth.basic import AuthBasicHandler
from paste.exceptions.errormiddleware import ErrorMiddleware
from paste.gzipper import middleware as paste_gzipper
from paste.translogger import TransLogger
from whitenoise import WhiteNoise

from middleware import (
    AccessLog,
    BasicAuth,
    ErrorCatcher,
    Gzip,
    Session,
    StaticFiles,
    compose,
)
from middleware.auth.passwords import make_bcrypt

App = Callable[[dict[str, Any], Any], Iterable[bytes]]

USER = "alice"
PASSWORD = "correct horse battery staple"
AUTHORIZATION = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SECRET = "benchmark-secret-" + "x" * 32
STATIC = Path(__file__).resolve().parent.parent / "examples" / "public"
#: Where each stack puts its session in the environ.
SESSION_KEYS = {
    "ours": "middleware.session",
    "ours, stream sink": "middleware.session",
    "anchors": "beaker.session",
    "bare": "",
}

#: The page: 1 KB of generated HTML that compresses like a real page (bench_gzip's).
PAGE = html(1024)
#: A body under Gzip's ``min_size``: ours sends it as it is, Paste's gzipper
#: compresses it all the same.
SMALL = b"Hello, alice!"
PAGE_HEADERS = [("Content-Type", "text/html; charset=utf-8")]


def wsgi_app(session_key: str, page: bytes = PAGE) -> App:
    """The trivial app: ``/`` reads the user from the session found at
    *session_key* (none when empty) and answers *page*; ``/login`` writes it."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        session = environ.get(session_key) if session_key else None
        if environ.get("PATH_INFO") == "/login" and session is not None:
            session["user"] = USER
            if hasattr(session, "save"):  # Beaker's sessions are saved by hand
                session.save()
        elif session is not None:
            session.get("user")
        start_response("200 OK", [*PAGE_HEADERS, ("Content-Length", str(len(page)))])
        return [page]

    return app


def htpasswd() -> Path:
    """A bcrypt (cost 10) htpasswd file with the benchmark's user, made once."""
    path = Path(tempfile.gettempdir()) / "wsgi-middleware-bench.htpasswd"
    if not path.exists():
        entry = f"{USER}:{make_bcrypt(PASSWORD.encode(), 10)}\n"
        temporary = path.with_suffix(f".{os.getpid()}")
        temporary.write_text(entry)
        os.replace(temporary, path)
    return path


def _paste_check(environ: dict[str, Any], user: str, password: str) -> bool:
    return user == USER and password == PASSWORD


def ours(app: App, stream: bool = False) -> App:
    """Our stack; with *stream*, AccessLog writes to a discarding stream instead
    of through logging (its ``stream`` option: not the stack the targets are
    measured on)."""
    access_log = (
        AccessLog(stream=DiscardingStream())
        if stream
        else AccessLog(discarding_logger("bench.ours"))
    )
    return compose(
        app,
        access_log,
        ErrorCatcher(),
        Gzip(level=6),
        BasicAuth(htpasswd=htpasswd(), realm="bench"),
        Session(SECRET, secure=False),
        StaticFiles(STATIC, prefix="/static"),
    )


def anchors(app: App) -> App:
    session = SessionMiddleware(
        WhiteNoise(app, root=str(STATIC), prefix="static"),
        {
            "session.type": "cookie",
            "session.key": "session",
            "session.validate_key": SECRET,
            "session.data_serializer": "json",
            "session.httponly": True,
        },
    )
    logged: App = TransLogger(
        ErrorMiddleware(
            paste_gzipper(AuthBasicHandler(session, "bench", _paste_check), 6),
            debug=False,
        ),
        logger=discarding_logger("bench.paste"),
        setup_console_handler=False,
    )
    return logged


STACKS: dict[str, Callable[[App], App]] = {
    "bare": lambda app: app,
    "ours": ours,
    "ours, stream sink": lambda app: ours(app, stream=True),
    "anchors": anchors,
}


def stack(name: str, page: bytes = PAGE) -> App:
    """The plain WSGI app answering *page*, inside the stack *name*."""
    return STACKS[name](wsgi_app(SESSION_KEYS[name], page))


def flask_app(name: str) -> Any:
    """A Flask app (``/`` and ``/login`` as :func:`wsgi_app`), its ``wsgi_app``
    wrapped in the stack *name*: what gunicorn serves."""
    from flask import Flask, request

    key = SESSION_KEYS[name]
    flask = Flask(__name__, static_folder=None)

    def session() -> Any:
        return request.environ.get(key) if key else None

    @flask.route("/")
    def index() -> Any:
        found = session()
        if found is not None:
            found.get("user")
        return PAGE, 200, PAGE_HEADERS

    @flask.route("/login")
    def login() -> Any:
        found = session()
        if found is not None:
            found["user"] = USER
            if hasattr(found, "save"):
                found.save()
        return PAGE, 200, PAGE_HEADERS

    flask.wsgi_app = STACKS[name](flask.wsgi_app)  # type: ignore[method-assign,assignment]
    return flask
