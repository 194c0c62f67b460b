"""StaticFiles against WhiteNoise and Werkzeug's SharedDataMiddleware, in one
process, serving the same 10 KB file. Requests, each through a minimal server loop
whose ``wsgi.file_wrapper`` is wsgiref's (so the body is read, as a server without
sendfile would):

- **200**: the file, body read to the end;
- **304**: ``If-None-Match`` with the ETag each one sent;
- **miss**: a path that no file matches, passed to the app: ``/`` (outside the
  prefix) and ``/static/missing.css`` (under it).

Target: at least as fast as WhiteNoise on all three. Then (issue 17) the 304 judged
against the file as it is now, beside WhiteNoise's ``autorefresh=True`` (its only
mode that looks), and what each answers to an old ETag once the file changed.
Printed: microseconds per request, the bare app included (medians; the three
middleware of a case measured in turns), and WhiteNoise's cost over ours.

Run: ``pip install -e '.[bench]' && python benchmarks/bench_static.py``
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.util import FileWrapper

import harness
from werkzeug.middleware.shared_data import SharedDataMiddleware
from whitenoise import WhiteNoise

from middleware.static import StaticFiles

HEADERS = [("Content-Type", "text/plain"), ("Content-Length", "2")]


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [b"ok"]


def etag_of(wsgi: Any, environ: dict[str, Any]) -> str:
    seen: dict[str, str] = {}

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        seen.update((name.lower(), value) for name, value in headers)
        return harness._write

    result = wsgi(environ, start_response)
    for _ in result:
        pass
    getattr(result, "close", lambda: None)()
    return seen["etag"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--number", type=int, default=10000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        with open(os.path.join(root, "app.css"), "wb") as file:
            file.write((b"body { color: #333; }\n" * 500)[:10240])
        stacks = {
            "ours": StaticFiles(root, prefix="/static")(app),
            "whitenoise": WhiteNoise(app, root=root, prefix="static"),
            "werkzeug": SharedDataMiddleware(app, {"/static": root}),
        }
        base = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_ACCEPT_ENCODING": "gzip, deflate, br, zstd",
            "wsgi.url_scheme": "http",
            "wsgi.file_wrapper": FileWrapper,
        }
        hit = {**base, "PATH_INFO": "/static/app.css"}

        def timed(wsgi: Any, environ: dict[str, Any]) -> float:
            return harness.median_us(
                lambda: harness.serve(wsgi, environ), args.repeat, args.number
            )

        def read_file() -> None:
            with open(os.path.join(root, "app.css"), "rb") as handle:
                os.fstat(handle.fileno())
                handle.read()

        floor = harness.median_us(read_file, args.repeat, args.number)
        cases: dict[str, Callable[[str], dict[str, Any]]] = {
            "200": lambda name: hit,
            "304": lambda name: {
                **hit,
                "HTTP_IF_NONE_MATCH": etag_of(stacks[name], dict(hit)),
            },
            "miss /": lambda name: {**base, "PATH_INFO": "/"},
            "miss /static/": lambda name: {**base, "PATH_INFO": "/static/missing.css"},
        }
        print(
            f"bare app: {timed(app, {**base, 'PATH_INFO': '/'}):.2f} us/request; "
            f"open + fstat + read of the file alone: {floor:.2f}"
            f" us (median of {args.repeat} x {args.number})"
        )
        print("us per request (median); last column: WhiteNoise's cost / ours")
        for case, make in cases.items():
            costs = harness.medians_us(
                {
                    name: functools.partial(harness.serve, wsgi, make(name))
                    for name, wsgi in stacks.items()
                },
                args.repeat,
                args.number,
            )
            print(
                f"  {case:14} ours {costs['ours']:6.2f}   whitenoise "
                f"{costs['whitenoise']:6.2f}   werkzeug {costs['werkzeug']:6.2f}   "
                f"{costs['whitenoise'] / costs['ours']:.2f}x"
            )
        current(root, hit, stacks, timed)


def current(
    root: str,
    hit: dict[str, Any],
    stacks: dict[str, Any],
    timed: Callable[[Any, dict[str, Any]], float],
) -> None:
    """The 304 judged against the file as it is now (issue 17): our scan mode stats
    the file; WhiteNoise does so only with ``autorefresh=True``, so that is the mode
    it is timed in here. Then the file changes, and each is asked again with the
    old ETag: a 304 then is a stale answer."""
    subjects = {
        "ours": stacks["ours"],
        "whitenoise": stacks["whitenoise"],
        "whitenoise autorefresh": WhiteNoise(
            app, root=root, prefix="static", autorefresh=True
        ),
    }
    old = {name: etag_of(wsgi, dict(hit)) for name, wsgi in subjects.items()}
    costs = {
        name: timed(subjects[name], {**hit, "HTTP_IF_NONE_MATCH": old[name]})
        for name in ("ours", "whitenoise autorefresh")
    }
    print(
        f"  304, current   ours {costs['ours']:6.2f}   whitenoise autorefresh "
        f"{costs['whitenoise autorefresh']:6.2f}   "
        f"{costs['whitenoise autorefresh'] / costs['ours']:.2f}x"
    )
    path = os.path.join(root, "app.css")
    with open(path, "ab") as file:
        file.write(b"/* changed */\n")
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    answers = [
        f"{name} {status_of(wsgi, {**hit, 'HTTP_IF_NONE_MATCH': old[name]})}"
        for name, wsgi in subjects.items()
    ]
    print("  the old ETag after the file changed gets: " + ", ".join(answers))


def status_of(wsgi: Any, environ: dict[str, Any]) -> str:
    seen: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        seen.append(status[:3])
        return harness._write

    result = wsgi(environ, start_response)
    for _ in result:
        pass
    getattr(result, "close", lambda: None)()
    return seen[-1]


if __name__ == "__main__":
    main()
