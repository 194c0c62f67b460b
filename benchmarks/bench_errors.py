"""ErrorCatcher against Paste's ErrorMiddleware(debug=False), in one process.

Two requests (issue 4), each through a minimal server loop (call, iterate, close):

- **normal**: the app returns a one-chunk body. Printed: microseconds over the bare
  app. Target: no more than one body layer of the core benchmark; the body layer
  (what the catcher is: it must see errors while iterating) and the start layer
  are measured in the same run for that comparison.
- **raising**: the app raises before start_response. Both middlewares answer 500
  and report the traceback. Paste writes it to ``wsgi.errors``; ours logs it to
  ``middleware.errors``, here with a handler formatting into a StringIO, so both pay
  for the traceback text. Target: at least 3x cheaper than Paste.

Medians of the repeats; compare ratios, not absolute figures, across machines.

Run: ``pip install -e '.[bench]' && python benchmarks/bench_errors.py``
"""

from __future__ import annotations

import argparse
import functools
import io
import logging
from collections.abc import Iterable
from typing import Any

import harness
from harness import App
from paste.exceptions.errormiddleware import ErrorMiddleware

from middleware import ErrorCatcher, Middleware, Responder
from middleware.wsgi import Headers

HEADERS = [("Content-Type", "text/plain"), ("Content-Length", "12")]


def ok(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [b"hello, world"]


def boom(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    raise ValueError("boom")


class _Body(Responder[Middleware]):
    counts_body = True


class _Start(Responder[Middleware]):
    def on_start(self, status: str, headers: Headers) -> None:
        pass


class BodyLayer(Middleware):
    responder = _Body


class StartLayer(Middleware):
    responder = _Start


def serve(app: App) -> int:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/orders",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "HTTP_HOST": "127.0.0.1:8080",
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.multiprocess": False,
        "wsgi.multithread": True,
        "wsgi.run_once": False,
    }
    return harness.serve(app, environ)


def median_us(app: App, repeat: int, number: int) -> float:
    return harness.median_us(lambda: serve(app), repeat, number)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()

    logger = logging.getLogger("middleware.errors")
    logger.addHandler(logging.StreamHandler(io.StringIO()))
    logger.propagate = False

    rows = [
        ("start layer", StartLayer()(ok)),
        ("body layer", BodyLayer()(ok)),
        ("ErrorCatcher", ErrorCatcher()(ok)),
        ("paste ErrorMiddleware", ErrorMiddleware(ok, debug=False)),
    ]
    runs = {"bare": functools.partial(serve, ok)}
    runs.update((name, functools.partial(serve, app)) for name, app in rows)
    costs = harness.medians_us(runs, args.repeat, args.number)  # in turns
    bare = costs["bare"]
    print(
        f"bare app: {bare:.3f} us/request (medians of {args.repeat} x "
        f"{args.number}, measured in turns)"
    )
    print()
    print("normal request: overhead over the bare app, us")
    overhead = {name: costs[name] - bare for name, _ in rows}
    for name, _ in rows:
        print(f"  {name:<22} {overhead[name]:8.3f}")
    catcher = overhead["ErrorCatcher"]
    print(
        f"  ErrorCatcher / body layer: {catcher / overhead['body layer']:.2f}x;"
        f" / start layer: {catcher / overhead['start layer']:.2f}x;"
        f" / Paste: {catcher / overhead['paste ErrorMiddleware']:.2f}x"
    )
    print()
    print("raising request (500 answered, traceback reported), us/request")
    number = max(args.number // 20, 200)
    paste = median_us(ErrorMiddleware(boom, debug=False), args.repeat, number)
    ours = median_us(ErrorCatcher()(boom), args.repeat, number)
    print(f"  {'paste ErrorMiddleware':<34} {paste:8.1f}")
    print(
        f"  {'ErrorCatcher, formatting handler':<34} {ours:8.1f}   {paste / ours:.2f}x"
    )
    # The same with a handler that formats nothing: what the middleware itself
    # costs, apart from the logging configuration the user chooses.
    logger.handlers[:] = [logging.NullHandler()]
    own = median_us(ErrorCatcher()(boom), args.repeat, number)
    print(f"  {'ErrorCatcher, NullHandler':<34} {own:8.1f}   {paste / own:.2f}x")
    print("  (the last column: how many times cheaper than Paste)")


if __name__ == "__main__":
    main()
