"""A body the app returns as a list or tuple of bytestrings: what each proxy does
with it (issue 23's fast path). A layer that watches only errors hands the app's
own list on; one that counts counts what the server takes of it; a filter with
nothing to watch after filters it before returning, so the server (and an outer
layer) gets a list with its length. Anything else in a list (a ``str``, a
``bytearray``, a list subclass with ``close()``) takes the usual path, errors and
all."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from middleware import ErrorCatcher, Gzip, Middleware, Outcome, Responder, compose
from middleware.testing import AppError, make_environ, run
from middleware.testing.apps import text_headers
from middleware.wsgi import StartResponse, WSGIApplication, WSGIEnvironment, get_header


def returning(body: Any, written: bytes = b"") -> WSGIApplication:
    """An app that starts, writes *written* (if any), and returns *body*."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        write = start_response("200 OK", text_headers())
        if written:
            write(written)
        return body

    return app


class ClosingList(list[bytes]):
    """A list with a ``close()``: it must be called, so it is never handed on."""

    closes = 0

    def close(self) -> None:
        self.closes += 1


def watching(**members: Any) -> Middleware:
    responder = type("Watching", (Responder,), members)
    middleware: Middleware = type("Watching", (Middleware,), {"responder": responder})()
    return middleware


def errors_only(seen: list[BaseException]) -> Middleware:
    return watching(on_error=lambda self, exc: seen.append(exc))


def counting(outcomes: list[Outcome]) -> Middleware:
    return watching(
        counts_body=True, on_close=lambda self, outcome: outcomes.append(outcome)
    )


#: Bodies of exact bytestrings in a list or tuple: the fast path's.
LISTED = {
    "one chunk": [b"hello"],
    "several chunks": [b"he", b"", b"llo"],
    "a tuple": (b"hel", b"lo"),
    "an empty list": [],
    "empty chunks only": [b"", b""],
}

#: What a careless app returns that looks like a list body but is not one of
#: bytestrings: each takes the usual path and its error reaches the hooks.
NOT_LISTED = {
    "a str chunk": [b"ok", "not bytes"],
    "a bytearray chunk": [bytearray(b"not bytes")],
    "None in the list": [b"ok", None],
}


@pytest.mark.parametrize("body", list(LISTED.values()), ids=list(LISTED))
def test_a_layer_watching_only_errors_hands_on_the_apps_own_list(body: Any) -> None:
    seen: list[BaseException] = []
    result = errors_only(seen)(returning(body))(make_environ(), run_start)
    assert result is body and seen == []


@pytest.mark.parametrize("body", list(NOT_LISTED.values()), ids=list(NOT_LISTED))
def test_a_list_of_not_only_bytes_still_reaches_the_error_hooks(body: Any) -> None:
    seen: list[BaseException] = []
    served = run(errors_only(seen)(returning(body)))
    assert isinstance(served.error, TypeError) and "PEP 3333" in str(served.error)
    assert [type(exc) for exc in seen] == [TypeError]


def test_a_list_with_close_is_proxied_and_closed_once() -> None:
    body = ClosingList([b"a", b"b"])
    seen: list[BaseException] = []
    served = run(errors_only(seen)(returning(body)))
    assert served.body == b"ab" and served.result is not body
    assert body.closes == 1 and seen == []


@pytest.mark.parametrize("body", list(LISTED.values()), ids=list(LISTED))
@pytest.mark.parametrize("written", [b"", b"written first "], ids=["list", "write"])
def test_a_counting_layer_counts_every_byte_of_a_list(
    body: Any, written: bytes
) -> None:
    outcomes: list[Outcome] = []
    served = run(counting(outcomes)(returning(body, written)))
    expected = written + b"".join(body)
    assert served.body == expected and served.error is None
    [outcome] = outcomes
    assert outcome.bytes_sent == len(expected) and outcome.headers_sent
    assert outcome.error is None and outcome.status == "200 OK"


@pytest.mark.parametrize("taken", [0, 1, 2])
def test_a_counted_list_the_server_gives_up_on_counts_what_it_took(
    taken: int,
) -> None:
    outcomes: list[Outcome] = []
    app = counting(outcomes)(returning([b"a" * 10, b"b" * 10, b"c" * 10]))
    served = run(app, abandon_after=taken)
    assert len(served.body) == 10 * taken
    [outcome] = outcomes  # on_close ran, once
    assert outcome.bytes_sent == 10 * taken and outcome.headers_sent == (taken > 0)


def test_a_counting_layer_whose_start_hook_failed_once_still_sees_the_200() -> None:
    """The app caught what the hook raised and started again: the list went out,
    and the outcome says so (the error is kept, the status is the one sent)."""
    outcomes: list[Outcome] = []
    calls: list[str] = []

    def on_start(self: Responder[Any], status: str, headers: Any) -> None:
        calls.append(status)
        if len(calls) == 1:
            raise AppError("the hook failed once")

    layer = watching(
        counts_body=True,
        on_start=on_start,
        on_close=lambda self, outcome: outcomes.append(outcome),
    )

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        try:
            start_response("200 OK", text_headers())
        except AppError:
            start_response("200 OK", text_headers())
        return [b"hello"]

    served = run(layer(app))
    assert served.status == "200 OK" and served.body == b"hello"
    [outcome] = outcomes
    assert outcome.status == "200 OK" and outcome.headers_sent
    assert outcome.bytes_sent == 5


PAGE = b"<p>" + b"compressible text " * 100 + b"</p>"


@pytest.mark.parametrize(
    "body", [[PAGE], [PAGE[:100], PAGE[100:]], (PAGE,)], ids=["one", "two", "tuple"]
)
def test_gzip_with_nothing_after_it_returns_a_list_with_its_length(body: Any) -> None:
    environ = make_environ()
    environ["HTTP_ACCEPT_ENCODING"] = "gzip"
    seen: list[Any] = []

    def server_start(status: str, headers: Any, exc_info: Any = None) -> Any:
        seen.append(headers)
        return lambda data: None

    result = Gzip()(returning(body))(environ, server_start)
    assert result.__class__ is list and len(result) == 1
    assert gzip.decompress(result[0]) == PAGE
    [headers] = seen  # the server was called before the app's call returned
    assert get_header(headers, "Content-Length") == str(len(result[0]))
    assert get_header(headers, "Content-Encoding") == "gzip"


class Raising:
    """A filter with ``complete`` (so its start is held) whose feed raises."""

    complete = False

    def feed(self, data: bytes) -> bytes:
        raise AppError("the filter failed")

    def finish(self) -> bytes:
        return b""


def test_a_filter_failing_at_once_is_answered_by_an_outer_error_catcher() -> None:
    failing = watching(filters=True, on_start=lambda self, status, headers: Raising())
    served = run(compose(returning([b"body"]), ErrorCatcher(), failing))
    assert served.status is not None and served.status.startswith("500")
    assert served.error is None


def test_a_filter_failing_at_once_reaches_the_server_without_a_catcher() -> None:
    failing = watching(filters=True, on_start=lambda self, status, headers: Raising())
    served = run(failing(returning([b"body"])))
    assert isinstance(served.error, AppError)
    assert served.status == "200 OK"  # the held start was given, as it would be


def run_start(status: str, headers: Any, exc_info: Any = None) -> Any:
    """A server start_response that keeps nothing."""
    return lambda data: None
