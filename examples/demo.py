"""The demo: a small WSGI app wrapped with compose() and served by waitress.

Run it from the repository root with the README's demo command, which installs the
``server`` extra and runs ``python examples/demo.py [PORT]``; then open
http://127.0.0.1:8080/. The stack holds a small observer built on the core, which
times each request and logs one line when the response is closed (the streaming
route shows that is after the last byte, not when the headers went out), around
:class:`~middleware.Gzip`, which compresses the page and the stream chunk by chunk:
``curl -N --compressed http://127.0.0.1:8080/stream`` prints each tick as it comes;
and :class:`~middleware.ErrorCatcher`, which answers ``/boom`` with a clean 500 page
and logs the traceback.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator

from middleware import ErrorCatcher, Gzip, Middleware, Observer, compose, describe
from middleware.core import StartResponse, WSGIEnvironment

log = logging.getLogger("demo")


class _Timing(Observer):
    """Log method, path, status, bytes and duration once the response is closed."""

    watch_body = True  # count the bytes that really went out
    started = 0.0

    def on_request(self) -> None:
        self.started = time.perf_counter()

    def on_close(self) -> None:
        elapsed = (time.perf_counter() - self.started) * 1000
        log.info(
            "%s %s -> %s, %d bytes, %.1f ms%s",
            self.environ["REQUEST_METHOD"],
            self.environ.get("PATH_INFO", "/"),
            self.status or "-",
            self.bytes_sent,
            elapsed,
            f" ({type(self.error).__name__})" if self.error else "",
        )


class Timing(Middleware):
    """A demo observer: one log line per request, when its response is closed."""

    observer = _Timing


def hello(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/stream":

        def ticks() -> Iterator[bytes]:
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            for second in range(1, 4):
                time.sleep(0.5)
                yield f"tick {second}\n".encode()

        return ticks()
    if path == "/boom":
        raise RuntimeError("the /boom route always fails")
    if path != "/":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    body = (
        b"<!doctype html><title>wsgi-middleware-toolkit</title>"
        b"<h1>Hello from a composed stack</h1>"
        b'<p>Try <a href="/stream">/stream</a>: the log line comes after the last tick.'
        b' And <a href="/boom">/boom</a>: a 500 page, the traceback in the log.'
    )
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


# Timing outermost: it logs the final status (the catcher's 500 included) and the
# bytes that really went out, compressed or not.
app = compose(hello, Timing(), ErrorCatcher(), Gzip(min_size=0))


def main() -> None:
    import waitress

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    print(describe(app), file=sys.stderr)
    print(f"serving on http://127.0.0.1:{port}/ (Ctrl-C stops)", file=sys.stderr)
    waitress.serve(app, host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()
