"""Middleware built on the core for the core's own tests, one per proxy mode.

Each records what it saw into ``environ["tests.records"]`` (per request, so cells do
not share state), and the conformance subjects below check those records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from middleware import Middleware, Observer, Transformer
from middleware.core import WSGIEnvironment

from .conformance import Outcome, Style, Subject


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


class _Tagging(Observer):
    """Pass mode: only on_start. Adds a header; the body is never touched."""

    def on_start(self) -> None:
        assert self.headers is not None
        self.headers.append(("X-Tag", self.middleware.tag))


class Tag(Middleware):
    observer = _Tagging

    def __init__(self, *, tag: str = "yes") -> None:
        self.tag = tag


class _Recording(Observer):
    """Records, at on_close, what this layer saw of the response."""

    layer = ""
    closes = 0

    def on_close(self) -> None:
        self.closes += 1
        records(self.environ).append(
            Record(self.layer, self.status, self.bytes_sent, self.error, self.closes)
        )


class _CloseRecording(_Recording):
    """Close mode: on_start and on_close, iteration left to the app's iterator."""

    layer = "close"

    def on_start(self) -> None:
        assert self.headers is not None
        self.headers.append(("X-Close-Recorder", "1"))


class CloseRecorder(Middleware):
    observer = _CloseRecording


class _BodyRecording(_Recording):
    """Body mode: counts bytes and sees errors raised while iterating."""

    layer = "body"
    watch_body = True

    def on_error(self, exc: BaseException) -> None:
        self.environ.setdefault("tests.errors", []).append(exc)


class BodyRecorder(Middleware):
    observer = _BodyRecording


class _Upper(Transformer):
    """A body transformer: upper-cases every chunk (and marks the response)."""

    def on_start(self) -> None:
        assert self.headers is not None
        self.headers.append(("X-Upper", "1" if self.transforming else "0"))

    def transform(self, data: bytes) -> bytes:
        return data.upper()


class Upper(Middleware):
    observer = _Upper


def check_records(layer: str) -> Any:
    """A Subject.check: the layer's on_close ran once and saw the final status."""

    def check(style: Style, outcome: Outcome) -> None:
        mine = [r for r in outcome.environ.get("tests.records", []) if r.layer == layer]
        assert len(mine) == 1, mine
        record = mine[0]
        assert record.closes == 1
        assert (record.status or "") == outcome.status
        if layer == "body":
            if style.error is not None and style.id != "raise-in-close":
                assert isinstance(record.error, style.error)
            if style.error is None or style.id == "raise-in-close":
                assert record.bytes_sent == len(outcome.body)

    return check


def check_tag(style: Style, outcome: Outcome) -> None:
    if outcome.status:
        assert outcome.header("X-Tag") == "yes"


def check_upper(style: Style, outcome: Outcome) -> None:
    if style.bodiless or not outcome.status:
        return
    assert outcome.header("X-Upper") == "1"
    assert outcome.body == outcome.body.upper()


SUBJECTS = [
    Subject("pass-observer", Tag(), check=check_tag),
    Subject("close-observer", CloseRecorder(), check=check_records("close")),
    Subject("body-observer", BodyRecorder(), check=check_records("body")),
    Subject(
        "transformer", Upper(), decode=bytes.lower, transforms=True, check=check_upper
    ),
]
