"""Gzip against Paste's gzipper and raw ``zlib.compressobj``, in one process.

Three measurements (issue 3; ``Gzip padded`` is ``random_padding=100``, issue 17):

1. **1 KB and 100 KB HTML bodies**, one-chunk list responses with Content-Type and
   Content-Length, served by a minimal in-process server loop (iterate, close).
   ``raw zlib`` is the floor: ``compressobj(6, DEFLATED, 31)``, ``compress``,
   ``flush`` on the same bytes, no WSGI. Printed: median microseconds per request
   and the ratio to raw zlib. Targets: at most 1.3x on 1 KB, 1.05x on 100 KB.
2. **A 50 MB incompressible body streamed in 64 KB chunks**: the time until the
   first non-empty chunk comes out of the middleware, and the peak growth of
   traced memory (tracemalloc) while the whole body is served. Targets: first
   byte within 5 ms, peak growth under 1 MB. Paste's gzipper needs the whole body
   before its first byte, so it is measured the same way for comparison.

The HTML is generated from a fixed seed, words and tags mixed so it compresses
like a real page (about 3-4x), not like a repeated string. All middlewares run at
gzip level 6. Timings are medians: compare ratios, not absolute figures, across
machines.

Run: ``pip install -e '.[bench]' && python benchmarks/bench_gzip.py``
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import statistics
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import harness
from harness import App, median_us
from paste.gzipper import middleware as paste_gzipper

from middleware import Gzip

# fmt: off
WORDS = [
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with",
    "be", "by", "on", "not", "he", "this", "are", "or", "his", "from", "at",
    "which", "but", "have", "an", "they", "you", "were", "her", "she", "there",
    "been", "one", "all", "we", "their", "middleware", "request", "response",
    "header", "body", "stream", "server", "client", "session", "cookie",
]
# fmt: on
TAGS = ["p", "li", "span", "a", "em", "strong", "td", "h2"]


def html(size: int, seed: int = 1) -> bytes:
    """A page of about *size* bytes, cut to exactly *size*."""
    rng = random.Random(seed)
    parts = ["<!doctype html><html><head><title>Bench</title></head><body>"]
    length = len(parts[0])
    while length < size:
        tag = rng.choice(TAGS)
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        part = f'<{tag} class="c{rng.randint(0, 40)}">{words}</{tag}>\n'
        parts.append(part)
        length += len(part)
    return "".join(parts).encode()[:size]


def serve(app: App) -> int:
    return harness.serve(app, environ())


def environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "HTTP_ACCEPT_ENCODING": "gzip, deflate, br, zstd",
    }


def list_app(body: bytes) -> App:
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ]

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", list(headers))
        return [body]

    return app


def raw_zlib(body: bytes) -> Callable[[], int]:
    def run() -> int:
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
        return len(compressor.compress(body) + compressor.flush())

    return run


def bodies(args: argparse.Namespace) -> None:
    print("gzip level 6, one-chunk HTML body; median us/request, ratio to raw zlib")
    print(f"{'body':>8}  {'subject':<14} {'us/req':>9} {'vs raw zlib':>12} {'out':>7}")
    for size, number in ((1024, args.number), (100 * 1024, max(args.number // 50, 20))):
        body = html(size)
        app = list_app(body)
        subjects: list[tuple[str, Callable[[], int]]] = [
            ("raw zlib", raw_zlib(body)),
            ("Gzip", functools.partial(serve, Gzip()(app))),
            ("Gzip padded", functools.partial(serve, Gzip(random_padding=100)(app))),
            ("paste gzipper", functools.partial(serve, paste_gzipper(app, 6))),
        ]
        floor = 0.0
        for name, run in subjects:
            us = median_us(run, args.repeat, number)
            floor = floor or us
            print(f"{size:>8}  {name:<14} {us:>9.2f} {us / floor:>11.3f}x {run():>7}")
        print()


def stream_app(chunks: int) -> App:
    pool = [os.urandom(64 * 1024) for _ in range(8)]  # incompressible for deflate

    def body() -> Iterator[bytes]:
        for index in range(chunks):
            yield pool[index % len(pool)]

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        # start_response before returning the generator: Paste's gzipper raises
        # "I/O operation on closed file" when it is called lazily, inside it.
        start_response("200 OK", [("Content-Type", "application/json")])
        return body()

    return app


def first_byte_ms(app: App) -> float:
    started = time.perf_counter()
    result = app(environ(), harness.start_response)
    try:
        for chunk in result:
            if chunk:
                return (time.perf_counter() - started) * 1e3
        return float("nan")
    finally:
        getattr(result, "close", lambda: None)()


def peak_growth(app: App) -> tuple[int, int]:
    """Peak traced memory growth while serving *app* whole, and the bytes out."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        sent = serve(app)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - base, sent


def stream(args: argparse.Namespace) -> None:
    chunks = args.stream_mb * 16  # 64 KB chunks
    inner = stream_app(chunks)
    print(f"{args.stream_mb} MB incompressible body in 64 KB chunks, gzip level 6")
    print(f"{'subject':<14} {'first byte ms':>14} {'peak growth':>14} {'total s':>8}")
    for name, app in (
        ("Gzip", Gzip()(inner)),
        ("paste gzipper", paste_gzipper(inner, 6)),
    ):
        firsts = [first_byte_ms(app) for _ in range(args.first_byte_repeat)]
        started = time.perf_counter()
        growth, sent = peak_growth(app)
        total = time.perf_counter() - started
        assert sent > 0
        print(
            f"{name:<14} {statistics.median(firsts):>14.3f} "
            f"{growth / 1e6:>11.3f} MB {total:>8.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--stream-mb", type=int, default=50)
    parser.add_argument("--first-byte-repeat", type=int, default=5)
    args = parser.parse_args()
    bodies(args)
    stream(args)


if __name__ == "__main__":
    main()
