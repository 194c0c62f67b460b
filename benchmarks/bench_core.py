"""Cost of one layer: the core's proxies against the cheapest hand-written wrapper.

Runs in one process, on one request shape (GET, a one-chunk list body, served by a
minimal in-process server loop that iterates and closes):

- ``bare``: the app alone (the floor);
- ``closure``: the cheapest layer CPython allows that still forwards close(): a
  closure returning a close-proxy object whose ``__iter__`` is the app's iterator;
- ``closure+sr``: the same, also wrapping start_response (as any layer that sees the
  status must);
- ``start``: a Responder with only ``on_start`` (sees status and headers: the start
  proxy, a closure around start_response; the fair match for ``closure+sr``);
- ``close``: ``on_start`` and ``on_close`` (what a timer needs: the close proxy);
- ``body``: ``counts_body`` and ``on_close`` (what an access log needs: the body
  proxy, every chunk passes through Python).

Each is stacked 1, 3 and 6 deep, and all are measured in turns
(``harness.medians_us``). Printed: the median microseconds per request over the
repeats, the overhead per layer over ``bare``, and that overhead as a ratio of
``closure``'s and of ``closure+sr``'s at the same depth. The target (issue 16): a
start layer at most 1.5x ``closure+sr``. Timings are medians because
shared machines are noisy; compare ratios, not absolute figures, across machines.

Run: ``python benchmarks/bench_core.py [--repeat 15] [--number 20000]``
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import harness

from middleware import Middleware, Outcome, Responder, compose
from middleware.wsgi import Headers

App = Callable[[dict[str, Any], Any], Iterable[bytes]]

BODY = [b"hello, world"]
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", "12")]


def bare(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return BODY


def _noop(*args: Any) -> None:
    return None


class ClosingProxy:
    """The minimal close-proxy: iterate the app's iterator, close it, call back."""

    __slots__ = ("_result", "_callback")

    def __init__(self, result: Iterable[bytes], callback: Callable[[], None]) -> None:
        self._result = result
        self._callback = callback

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._callback()


def closure(app: App) -> App:
    def wrapped(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return ClosingProxy(app(environ, start_response), _noop)

    return wrapped


def closure_sr(app: App) -> App:
    def wrapped(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        seen: list[str] = []

        def sr(status: str, headers: Any, exc_info: Any = None) -> Any:
            seen.append(status)
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        return ClosingProxy(app(environ, sr), _noop)

    return wrapped


class _Start(Responder[Middleware]):
    def on_start(self, status: str, headers: Headers) -> None:
        pass


class _Close(Responder[Middleware]):
    def on_start(self, status: str, headers: Headers) -> None:
        pass

    def on_close(self, outcome: Outcome) -> None:
        pass


class _Body(Responder[Middleware]):
    counts_body = True

    def on_close(self, outcome: Outcome) -> None:
        pass


def middleware_for(responder: type[Responder[Any]]) -> Callable[[], Middleware]:
    return type(responder.__name__, (Middleware,), {"responder": responder})


LAYERS: dict[str, Callable[[], Callable[[App], App]]] = {
    "closure": lambda: closure,
    "closure+sr": lambda: closure_sr,
    "start": middleware_for(_Start),
    "close": middleware_for(_Close),
    "body": middleware_for(_Body),
}


def serve(app: App, environ: dict[str, Any]) -> None:
    """A minimal server: call, iterate, close."""

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        return _noop

    result = app(environ, start_response)
    for _chunk in result:
        pass
    close = getattr(result, "close", None)
    if close is not None:
        close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()

    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    runs = {"bare": functools.partial(serve, bare, environ)}
    for name, factory in LAYERS.items():  # measure everything in turns, then print
        for depth in (1, 3, 6):
            stack = compose(bare, *[factory() for _ in range(depth)])
            runs[f"{name} {depth}"] = functools.partial(serve, stack, environ)
    costs = harness.medians_us(runs, args.repeat, args.number)
    base = costs["bare"]
    print(
        f"bare app: {base:.3f} us/request (medians of {args.repeat} x "
        f"{args.number}, measured in turns)"
    )
    print()
    print(
        f"{'layer':<16}{'depth':>6}{'us/req':>9}{'us/layer':>10}"
        f"{'vs closure':>12}{'vs closure+sr':>15}"
    )
    results = {
        name: {depth: costs[f"{name} {depth}"] for depth in (1, 3, 6)}
        for name in LAYERS
    }
    for name, by_depth in results.items():
        for depth, total in by_depth.items():
            per_layer = (total - base) / depth
            closure = (results["closure"][depth] - base) / depth
            closure_sr = (results["closure+sr"][depth] - base) / depth
            print(
                f"{name:<16}{depth:>6}{total:>9.3f}{per_layer:>10.3f}"
                f"{per_layer / closure:>11.2f}x{per_layer / closure_sr:>14.2f}x"
            )
        print()


if __name__ == "__main__":
    main()
