"""AccessLog against Paste's TransLogger, in one process, same handler setup.

Both loggers get one handler that formats each record (``%(message)s``) and discards
the text, so both pay for the stdlib's record and formatting. Each request goes
through a minimal server loop (call, iterate, close) on a one-chunk body. Printed:
median microseconds per request, the overhead over the bare app, and TransLogger's
overhead divided by ours. Also printed: the stdlib ``logger.info`` call alone, the
floor both pay.

AccessLog does strictly more than TransLogger: it logs at close (final status,
counted bytes, duration to the last byte), generates a request id, sets the
ContextVar and echoes the id as a header, and attaches the JSON fields to the record.
Target (issue 5, again issue 23): at least 1.3x cheaper than TransLogger.

Beside them, not for the target: AccessLog's ``stream`` option, which writes each
line to a text stream without ``logging`` (here a stream that discards what it is
given, as the handler does).

Run: ``pip install -e '.[bench]' && python benchmarks/bench_access_log.py``
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Iterable
from typing import Any

import harness
from harness import App, DiscardingStream, discarding_logger, median_us, medians_us
from paste.translogger import TransLogger

from middleware import AccessLog

HEADERS = [("Content-Type", "text/html"), ("Content-Length", "12")]


def ok(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [b"hello, world"]


ENVIRON = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/articles/42",
    "QUERY_STRING": "page=2",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "REMOTE_ADDR": "203.0.113.9",
    "HTTP_HOST": "example.com",
    "HTTP_REFERER": "https://example.com/",
    "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
    "wsgi.url_scheme": "http",
}


def serve(app: App) -> int:
    return harness.serve(app, dict(ENVIRON))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--number", type=int, default=10000)
    args = parser.parse_args()
    repeat, number = args.repeat, args.number

    bare = median_us(lambda: serve(ok), repeat, number)
    stdlib = discarding_logger("bench.stdlib")
    info = median_us(lambda: stdlib.info("a line"), repeat, number)
    print(f"bare app: {bare:.3f} us/request; logger.info alone: {info:.3f} us")
    print(f"(medians of {repeat} x {number})")
    print()
    translogger = TransLogger(
        ok, logger=discarding_logger("bench.paste"), setup_console_handler=False
    )
    rows: list[tuple[str, App]] = [
        ("paste TransLogger", translogger),
        ("AccessLog combined", AccessLog(discarding_logger("bench.ours"))(ok)),
        (
            "AccessLog json",
            AccessLog(discarding_logger("bench.json"), format="json")(ok),
        ),
        ("stream combined", AccessLog(stream=DiscardingStream())(ok)),
        ("stream json", AccessLog(format="json", stream=DiscardingStream())(ok)),
    ]
    runs = {name: functools.partial(serve, app) for name, app in rows}
    costs = medians_us(runs, repeat, number)  # in turns
    print(f"{'subject':<20} {'us/req':>8} {'overhead':>9} {'Paste/ours':>11}")
    paste_overhead = costs["paste TransLogger"] - bare
    for name, _ in rows:
        overhead = costs[name] - bare
        ratio = paste_overhead / overhead
        print(f"{name:<20} {costs[name]:>8.2f} {overhead:>9.2f} {ratio:>10.2f}x")


if __name__ == "__main__":
    main()
