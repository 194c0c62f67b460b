"""The demo: a small WSGI app wrapped with compose() and served by waitress.

Run it from the repository root with the README's demo command, which installs the
``server`` extra and runs ``.venv/bin/python examples/demo.py [PORT]``; then open
http://127.0.0.1:8080/. The stack, outermost first:

- :class:`~middleware.AccessLog` logs one line per request when its response is
  closed: the streaming route shows that is after the last byte, not when the
  headers went out, and ``/boom`` is logged with the 500 the catcher sent;
- :class:`~middleware.ErrorCatcher` answers ``/boom`` with a clean 500 page (it
  shows the request id) and logs the traceback;
- :class:`~middleware.Gzip` compresses the page and the stream chunk by chunk:
  ``curl -N --compressed http://127.0.0.1:8080/stream`` prints each tick as it
  comes.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator

from middleware import AccessLog, ErrorCatcher, Gzip, compose, describe
from middleware.wsgi import StartResponse, WSGIEnvironment


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


app = compose(hello, AccessLog(), ErrorCatcher(), Gzip(min_size=0))


def main() -> None:
    import waitress

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    print(describe(app), file=sys.stderr)
    print(f"serving on http://127.0.0.1:{port}/ (Ctrl-C stops)", file=sys.stderr)
    waitress.serve(app, host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()
