"""What the middleware benchmarks share: a minimal in-process server loop and a
median timer. Run the benchmarks as scripts (``python benchmarks/bench_x.py``),
which puts this directory on the import path."""

from __future__ import annotations

import logging
import statistics
import timeit
from collections.abc import Callable, Iterable, Mapping
from typing import Any

App = Callable[[dict[str, Any], Any], Iterable[bytes]]


def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
    """A server's start_response that keeps nothing."""
    return _write


def _write(data: bytes) -> None:
    return None


def serve(app: App, environ: dict[str, Any]) -> int:
    """One request as a server makes it: call, iterate, close. The bytes out."""
    result = app(environ, start_response)
    try:
        return sum(len(chunk) for chunk in result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def median_us(run: Callable[[], object], repeat: int, number: int) -> float:
    """The median over *repeat* runs of the microseconds one call of *run* takes."""
    times = timeit.repeat(run, repeat=repeat, number=number)
    return statistics.median(times) / number * 1e6


def medians_us(
    runs: Mapping[str, Callable[[], object]], repeat: int, number: int
) -> dict[str, float]:
    """:func:`median_us` of each of *runs*, measured in turns (one batch of each per
    round, the order rotating) so that a noisy neighbour slows all of them alike
    rather than whichever happened to be running."""
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeat):
        for i in range(len(names)):
            name = names[(round_ + i) % len(names)]
            times[name].append(timeit.timeit(runs[name], number=number))
    return {name: statistics.median(t) / number * 1e6 for name, t in times.items()}


class Discard(logging.Handler):
    """Formats every record, keeps nothing: a log line's cost without the I/O."""

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)


def discarding_logger(name: str) -> logging.Logger:
    """The logger *name*, at INFO, writing ``%(message)s`` lines to :class:`Discard`
    only (not propagated)."""
    log = logging.getLogger(name)
    log.handlers[:] = [Discard()]
    log.handlers[0].setFormatter(logging.Formatter("%(message)s"))
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


class DiscardingStream:
    """A text stream that keeps nothing: the stream sink's cost without the I/O."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None
