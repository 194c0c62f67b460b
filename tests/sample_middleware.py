"""Middleware built on the core for the core's own tests, one per proxy mode.

Each records what its outcome said into ``environ["tests.records"]`` (per request,
so cells do not share state), and the conformance subjects below check those records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from middleware import BodyFilter, Middleware, Outcome, Responder
from middleware.testing import Served, Style, Subject
from middleware.wsgi import Headers, WSGIEnvironment


@dataclass
class Record:
    layer: str
    status: str | None
    bytes_sent: int
    error: BaseException | None
    closes: int


def records(environ: WSGIEnvironment) -> list[Record]:
    found: list[Record] = environ.setdefault("tests.records", [])
    return found


class _Tagging(Responder["Tag"]):
    """A start layer: only on_start. Adds a header; the body is never touched."""

    def on_start(self, status: str, headers: Headers) -> None:
        headers.append(("X-Tag", self.middleware.tag))


class Tag(Middleware):
    responder = _Tagging

    def __init__(self, *, tag: str = "yes") -> None:
        self.tag = tag


class _Recording(Responder[Middleware]):
    """Records, at on_close, what this layer's outcome says."""

    layer = ""

    def __init__(self, middleware: Middleware, environ: WSGIEnvironment) -> None:
        super().__init__(middleware, environ)
        self.closes = 0

    def on_close(self, outcome: Outcome) -> None:
        self.closes += 1
        records(self.environ).append(
            Record(
                self.layer,
                outcome.status,
                outcome.bytes_sent,
                outcome.error,
                self.closes,
            )
        )


class _CloseRecording(_Recording):
    """A close layer: on_start and on_close, iteration left to the app's iterator."""

    layer = "close"

    def on_start(self, status: str, headers: Headers) -> None:
        headers.append(("X-Close-Recorder", "1"))


class CloseRecorder(Middleware):
    responder = _CloseRecording


class _BodyRecording(_Recording):
    """A body layer: counts bytes and sees errors raised while iterating."""

    layer = "body"
    counts_body = True

    def on_error(self, exc: BaseException) -> None:
        self.environ.setdefault("tests.errors", []).append(exc)


class BodyRecorder(Middleware):
    responder = _BodyRecording


class _ErrorsRecording(Responder["ErrorsRecorder"]):
    """An errors layer: error hooks only, no __init__ of its own, so the core makes
    it only when an error comes. Records each error once, in the environ."""

    def on_error(self, exc: BaseException) -> None:
        self.environ.setdefault("tests.errors-only", []).append(exc)


class ErrorsRecorder(Middleware):
    responder = _ErrorsRecording


def check_errors(style: Style, outcome: Served) -> None:
    """A Subject.check: the errors layer saw the style's error, once, and nothing
    on a response that raised nothing."""
    seen = outcome.environ.get("tests.errors-only", [])
    if style.error is None:
        assert seen == [], seen
    else:
        assert len(seen) >= 1 and isinstance(seen[0], style.error), seen


class UpperFilter:
    """A body filter: upper-cases every chunk."""

    def feed(self, data: bytes) -> bytes:
        return data.upper()

    def finish(self) -> bytes:
        return b""


class _Upper(Responder["Upper"]):
    """A filter layer: upper-cases every body it may (and marks the response)."""

    filters = True

    def on_start(self, status: str, headers: Headers) -> BodyFilter | None:
        headers.append(("X-Upper", "1" if self.filterable else "0"))
        return UpperFilter() if self.filterable else None


class Upper(Middleware):
    responder = _Upper


def check_records(layer: str) -> Any:
    """A Subject.check: the layer's on_close ran once and saw the final status."""

    def check(style: Style, outcome: Served) -> None:
        mine = [r for r in outcome.environ.get("tests.records", []) if r.layer == layer]
        assert len(mine) == 1, mine
        record = mine[0]
        assert record.closes == 1
        if record.error is not None and not outcome.body and not style.bodiless:
            # An error before any byte: the server answered it with a 500.
            assert record.status == "500 Internal Server Error", record.status
        else:
            assert (record.status or "") == outcome.status
        if layer == "body":
            if style.error is not None and style.id != "raise-in-close":
                assert isinstance(record.error, style.error)
            if style.error is None or style.id == "raise-in-close":
                assert record.bytes_sent == len(outcome.body)

    return check


def check_tag(style: Style, outcome: Served) -> None:
    if outcome.status:
        assert outcome.header("X-Tag") == "yes"


def check_upper(style: Style, outcome: Served) -> None:
    if style.bodiless or not outcome.status:
        return
    assert outcome.header("X-Upper") == "1"
    assert outcome.body == outcome.body.upper()


SUBJECTS = [
    Subject("start-layer", Tag(), check=check_tag),
    Subject("close-layer", CloseRecorder(), check=check_records("close")),
    Subject("body-layer", BodyRecorder(), check=check_records("body")),
    Subject("errors-layer", ErrorsRecorder(), check=check_errors),
    Subject(
        "filter-layer", Upper(), decode=bytes.lower, transforms=True, check=check_upper
    ),
]
