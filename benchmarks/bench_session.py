"""Session against Beaker's SessionMiddleware, in one process.

Three requests (issue 6), each through a minimal server loop (call, iterate, close),
each with a fresh copy of one environ:

- **untouched**: the app never looks at the session (the cookie is sent anyway).
  Target: no more than one start layer; two are measured in the same run for
  that comparison: a start layer (on_start only) and one that, like the session,
  also puts an object in the environ (on_request).
- **read**: the app reads a key of an existing session.
- **write**: the app changes a key of an existing session, so it is saved.

Ours: signed cookies (the default) and MemoryStore. Beaker: ``type=cookie`` with a
``validate_key`` and JSON (its safe configuration), and ``type=memory``.
Targets: a cookie read at least 8x and a cookie write at least 3x faster than
Beaker's cookie session.

Medians of the repeats; compare ratios, not absolute figures, across machines.

Run: ``pip install -e '.[bench]' && python benchmarks/bench_session.py``
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any

import harness
from beaker.middleware import SessionMiddleware
from harness import App

from middleware import Middleware, Responder
from middleware.session import MemoryStore, Session
from middleware.session.codec import VERIFIED_SIZE, Codec
from middleware.wsgi import Headers

SECRET = "benchmark-secret-" + "x" * 32
NOW = int(time.time())
Wrap = Callable[[App], App]
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", "2")]
# Each response gets its own copy: Beaker appends its Set-Cookie to the list the
# app passes, which would grow a shared list (and every later request's cost).


def make_apps(key: str, save: bool) -> dict[str, App]:
    """The three apps for sessions found at environ[key]; Beaker needs save()."""

    def untouched(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", list(HEADERS))
        return [b"ok"]

    def read(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ[key].get("user")
        start_response("200 OK", list(HEADERS))
        return [b"ok"]

    def write(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        session = environ[key]
        session["count"] = session.get("count", 0) + 1
        if save:
            session.save()
        start_response("200 OK", list(HEADERS))
        return [b"ok"]

    return {"untouched": untouched, "read": read, "write": write}


class _Start(Responder[Middleware]):
    def on_start(self, status: str, headers: Headers) -> None:
        pass


class StartLayer(Middleware):
    responder = _Start


class _Keyed(Responder[Middleware]):
    def __init__(self, middleware: Middleware, environ: dict[str, Any]) -> None:
        super().__init__(middleware, environ)
        environ["bench.key"] = object()

    def on_start(self, status: str, headers: Headers) -> None:
        pass


class KeyedLayer(Middleware):
    """The least a session layer does: put an object in the environ, look at start."""

    responder = _Keyed


def cookie_from(app: Wrap) -> str:
    """Log in once: the session cookie a first write sets (user and count)."""
    headers: list[tuple[str, str]] = []

    def start_response(status: str, response_headers: Any, exc_info: Any = None) -> Any:
        headers.extend(response_headers)
        return harness._write

    def login(environ: dict[str, Any], start: Any) -> Iterable[bytes]:
        key = (
            "middleware.session"
            if "middleware.session" in environ
            else "beaker.session"
        )
        session = environ[key]
        session["user"] = "alice"
        session["count"] = 0
        if hasattr(session, "save"):
            session.save()
        start("200 OK", list(HEADERS))
        return [b"ok"]

    list(app(login)({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, start_response))
    for name, value in headers:
        if name.lower() == "set-cookie":
            return value.split(";")[0]
    raise RuntimeError("no cookie was set")


def stacks() -> dict[str, Wrap]:
    return {
        "ours, cookie": Session(SECRET),
        "ours, MemoryStore": Session(SECRET, store=MemoryStore()),
        "beaker, cookie": lambda app: SessionMiddleware(
            app,
            {
                "session.type": "cookie",
                "session.key": "session",
                "session.validate_key": SECRET,
                "session.data_serializer": "json",
                "session.httponly": True,
            },
        ),
        "beaker, memory": lambda app: SessionMiddleware(
            app, {"session.type": "memory", "session.key": "session"}
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--number", type=int, default=5000)
    args = parser.parse_args()

    def timed(app: App, environ: dict[str, Any]) -> float:
        return harness.median_us(
            lambda: harness.serve(app, dict(environ)), args.repeat, args.number
        )

    base = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.url_scheme": "http"}
    plain = make_apps("unused", save=False)["untouched"]
    bare = timed(plain, base)
    pass_layer = timed(StartLayer()(plain), base) - bare
    keyed_layer = timed(KeyedLayer()(plain), base) - bare
    print(f"bare app: {bare:.2f} us/request (median of {args.repeat} x {args.number})")
    print(f"one start layer (on_start): {pass_layer:.2f} us over the bare app")
    print(
        "one start layer putting a key in the environ (__init__, on_start): "
        f"{keyed_layer:.2f} us\n"
    )

    results: dict[tuple[str, str], float] = {}
    for name, wrap in stacks().items():
        beaker = name.startswith("beaker")
        key = "beaker.session" if beaker else "middleware.session"
        environ = {**base, "HTTP_COOKIE": "_ga=GA1.2.3; " + cookie_from(wrap)}
        for request, app in make_apps(key, save=beaker).items():
            results[name, request] = timed(wrap(app), environ) - bare

    print("us over the bare app (median); last column: how many times cheaper")
    print("than Beaker's session of the same kind")
    print(f"{'request':10}{'subject':22}{'us':>9}{'vs beaker':>11}")
    for request in ("untouched", "read", "write"):
        for name in stacks():
            cost = results[name, request]
            kind = "cookie" if "cookie" in name else "memory"
            anchor = results[f"beaker, {kind}", request]
            ratio = f"{anchor / cost:9.2f}x" if not name.startswith("beaker") else ""
            print(f"{request:10}{name:22}{cost:9.2f}  {ratio}")
        print()
    # The cookie codec remembers values it verified; the read above repeats one
    # cookie. Here every request brings a cookie it has not seen (more of them than
    # it remembers), so each pays for base64 and the HMAC.
    session = Session(SECRET)
    reader = session(make_apps("middleware.session", save=False)["read"])
    values = [
        "session="
        + Codec(SECRET.encode(), (), "middleware.session.cookie").dumps(
            {"c": NOW, "t": NOW - n, "d": {"user": "alice", "count": 0}}
        )
        for n in range(4 * VERIFIED_SIZE)
    ]
    unseen = itertools.cycle(values)
    fresh = harness.median_us(
        lambda: harness.serve(reader, {**base, "HTTP_COOKIE": next(unseen)}),
        args.repeat,
        args.number,
    )
    repeated = harness.median_us(
        lambda: harness.serve(reader, {**base, "HTTP_COOKIE": values[0]}),
        args.repeat,
        args.number,
    )
    print(
        f"read, ours, cookie: {repeated - bare:.2f} us with a cookie seen before, "
        f"{fresh - bare:.2f} us with one never seen ("
        f"{results['beaker, cookie', 'read'] / (fresh - bare):.2f}x cheaper than "
        "Beaker's cookie read)\n"
    )
    untouched = results["ours, cookie", "untouched"]
    print(f"untouched / one start layer: {untouched / pass_layer:.2f}x")
    print(f"untouched / one environ-key start layer: {untouched / keyed_layer:.2f}x")


if __name__ == "__main__":
    main()
