"""The response proxies: the conformance matrix plus the cases it cannot express."""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, ClassVar
from wsgiref.util import FileWrapper

import pytest

from middleware import BodyFilter, Layer, Middleware, Outcome, Responder
from middleware import testing as conformance
from middleware.proxy import plan
from middleware.testing import AppError, Probe, make_environ, run
from middleware.testing.apps import CountingFile, CountingIterable, text_headers
from middleware.wsgi import (
    Answer,
    Headers,
    StartResponse,
    WSGIApplication,
    WSGIEnvironment,
    body_forbidden,
    get_header,
    remove_header,
    status_code,
)

from .sample_middleware import (
    SUBJECTS,
    BodyRecorder,
    CloseRecorder,
    Tag,
    Upper,
    UpperFilter,
    records,
)

test_conformance = conformance.suite(*SUBJECTS)


# -- small building blocks ------------------------------------------------------------


def simple_app(
    body: list[bytes], headers: list[tuple[str, str]] | None = None
) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", headers if headers is not None else text_headers())
        return body

    return app


def hooked(**members: Any) -> Middleware:
    """A middleware whose responder has the given hooks and class options."""
    responder = type("Hooked", (Responder,), members)
    middleware: Middleware = type("Hooked", (Middleware,), {"responder": responder})()
    return middleware


class CallFilter:
    """A body filter made of two functions (identity and nothing by default)."""

    def __init__(
        self,
        feed: Callable[[bytes], bytes] | None = None,
        finish: Callable[[], bytes] | None = None,
    ) -> None:
        self._feed = feed
        self._finish = finish

    def feed(self, data: bytes) -> bytes:
        return data if self._feed is None else self._feed(data)

    def finish(self) -> bytes:
        return b"" if self._finish is None else self._finish()


Decide = Callable[[Responder[Any], str, Headers], bool]


def filtering(
    feed: Callable[[bytes], bytes] | None = None,
    finish: Callable[[], bytes] | None = None,
    *,
    decide: Decide | None = None,
    **members: Any,
) -> Middleware:
    """A middleware whose responder filters every body it may (or those *decide*
    wants) through *feed* and *finish*."""

    def on_start(
        self: Responder[Any], status: str, headers: Headers
    ) -> BodyFilter | None:
        wanted = self.filterable if decide is None else decide(self, status, headers)
        return CallFilter(feed, finish) if wanted else None

    return hooked(filters=True, on_start=on_start, **members)


def capturing(outcomes: list[Outcome], **members: Any) -> Middleware:
    """A middleware whose responder appends its Outcome to *outcomes*."""

    def on_close(self: Responder[Any], outcome: Outcome) -> None:
        outcomes.append(outcome)

    return hooked(on_close=on_close, **members)


def lax_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
    """A server start_response that never re-raises (the proxy must do it)."""
    return lambda data: None


# -- choosing a proxy and making responders -------------------------------------------

KIND_HOOKS: dict[str, dict[str, Any]] = {
    "direct": {"on_request": lambda self: None},
    "start": {"on_start": lambda self, status, headers: None},
    "close": {"on_close": lambda self, outcome: None},
    "body": {"counts_body": True},
    "filter": {"filters": True, "on_start": lambda self, status, headers: None},
}


def test_plan_chooses_the_proxy_from_the_hooks() -> None:
    for kind, members in KIND_HOOKS.items():
        assert plan(hooked(**members)) == kind, kind
    assert plan(hooked()) == "direct"
    assert plan(hooked(on_error=lambda self, exc: None)) == "errors"
    assert plan(hooked(recover=lambda self, exc: None)) == "errors"
    # Errors and anything else, or an __init__ of its own: the body proxy.
    assert plan(hooked(on_error=lambda self, exc: None, counts_body=True)) == "body"
    assert plan(hooked(recover=lambda self, exc: None, on_request=lambda s: None)) == (
        "body"
    )
    own_init = hooked(on_error=lambda self, exc: None, __init__=Responder.__init__)
    assert plan(own_init) == "errors"  # the same function: nothing of its own
    assert plan(hooked(on_error=lambda self, exc: None, __init__=_own_init)) == "body"
    own_new = hooked(on_error=lambda self, exc: None, __new__=_own_new)
    assert plan(own_new) == "body"  # work in __new__ would be skipped otherwise
    assert plan(capturing([], on_start=lambda self, status, headers: None)) == "close"
    assert plan(filtering(on_close=lambda self, outcome: None)) == "filter"
    assert [plan(m) for m in (Tag(), CloseRecorder(), BodyRecorder(), Upper())] == [
        "start",
        "close",
        "body",
        "filter",
    ]
    assert plan(_Retired()) == "answer"


def _own_init(
    self: Responder[Any], middleware: Middleware, environ: WSGIEnvironment
) -> None:
    Responder.__init__(self, middleware, environ)


def _own_new(cls: type[Responder[Any]], *args: Any) -> Responder[Any]:
    responder: Responder[Any] = object.__new__(cls)
    return responder


class Made:
    """The responders made once :meth:`start` is called: Responder.__init__ is
    patched to count them after a layer was planned (so plan() saw the real one)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.responders: list[Responder[Any]] = []
        self._monkeypatch = monkeypatch

    def start(self) -> None:
        real = Responder.__init__
        responders = self.responders

        def counting(
            self: Responder[Any], middleware: Any, environ: WSGIEnvironment
        ) -> None:
            real(self, middleware, environ)
            responders.append(self)

        self._monkeypatch.setattr(Responder, "__init__", counting)


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> Made:
    return Made(monkeypatch)


def counted_errors_layer(made: Made, **members: Any) -> Middleware:
    """An errors-only middleware, planned; from then on its responders are counted."""
    members.setdefault("on_error", lambda self, exc: None)
    layer = hooked(**members)
    assert plan(layer) == "errors"
    made.start()
    return layer


def test_an_errors_only_responder_is_made_only_when_an_error_comes(
    made: Made,
) -> None:
    layer = counted_errors_layer(made)
    body = [b"ok"]
    assert layer(simple_app(body))(make_environ(), lax_start_response) is body

    def streaming(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", text_headers())
        yield b"a"
        yield b"b"

    served = run(layer(streaming))
    assert served.body == b"ab" and served.error is None and made.responders == []


def test_an_errors_only_responder_is_not_made_for_an_exc_info_restart(
    made: Made,
) -> None:
    layer = counted_errors_layer(made)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", text_headers())
        try:
            raise AppError("handled by the app")
        except AppError:
            start_response("500 Internal Server Error", text_headers(), sys.exc_info())
        return [b"oops"]

    served = run(layer(app))
    assert served.status == "500 Internal Server Error" and served.body == b"oops"
    assert served.error is None and made.responders == []


def test_an_errors_only_responder_made_late_sees_its_request(
    made: Made,
) -> None:
    seen: list[tuple[object, object, BaseException]] = []

    def on_error(self: Responder[Any], exc: BaseException) -> None:
        seen.append((self.middleware, self.environ, exc))

    def recover(self: Responder[Any], exc: Exception) -> Any:
        return "500 Internal Server Error", text_headers(), b"caught"

    layer = counted_errors_layer(made, on_error=on_error, recover=recover)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        raise AppError("boom")

    environ = make_environ()
    served = run(layer(app), environ)
    assert served.status == "500 Internal Server Error" and served.body == b"caught"
    assert len(made.responders) == 1 and len(seen) == 1
    middleware, seen_environ, exc = seen[0]
    assert middleware is layer and seen_environ is environ
    assert isinstance(exc, AppError)


def test_a_responder_that_is_not_a_responder_class_is_refused() -> None:
    class Wrong(Middleware):
        responder = object  # type: ignore[assignment]

    with pytest.raises(TypeError, match="Wrong.responder must be a Responder"):
        Wrong()(simple_app([]))


@pytest.mark.parametrize("kind", list(KIND_HOOKS))
def test_responder_init_runs_once_per_request_with_middleware_and_environ(
    kind: str,
) -> None:
    """What Observer.for_request did: a responder is made by its own __init__,
    with (middleware, environ), once per request, whatever the proxy."""
    made: list[tuple[Responder[Any], Middleware, WSGIEnvironment]] = []

    def __init__(
        self: Responder[Any], middleware: Middleware, environ: WSGIEnvironment
    ) -> None:
        Responder.__init__(self, middleware, environ)
        made.append((self, middleware, environ))

    layer = hooked(__init__=__init__, **KIND_HOOKS[kind])
    assert plan(layer) == kind
    app = layer(simple_app([b"ok"]))
    environs = [make_environ(path=f"/{index}") for index in range(3)]
    for environ in environs:
        assert run(app, environ).body == b"ok"
    assert len(made) == 3
    assert len({id(responder) for responder, _, _ in made}) == 3
    for (responder, middleware, environ), expected in zip(made, environs, strict=True):
        assert middleware is layer and environ is expected
        assert responder.middleware is layer and responder.environ is expected


def test_a_custom_responder_init_keeps_per_request_state() -> None:
    class _Counting(Responder["Counting"]):
        def __init__(self, middleware: Counting, environ: WSGIEnvironment) -> None:
            super().__init__(middleware, environ)
            self.chunks: list[int] = []
            middleware.made += 1

        def on_start(self, status: str, headers: Headers) -> None:
            headers.append(("X-Request", str(self.middleware.made)))

        def on_close(self, outcome: Outcome) -> None:
            self.environ["tests.outcome"] = outcome

    class Counting(Middleware):
        responder = _Counting

        def __init__(self) -> None:
            self.made = 0

    counting = Counting()
    app = counting(simple_app([b"ok"]))
    for expected in ("1", "2"):
        environ = make_environ()
        outcome = run(app, environ)
        assert outcome.header("X-Request") == expected
        assert environ["tests.outcome"].status == "200 OK"
    assert counting.made == 2


# -- what the server gets back --------------------------------------------------------


def test_start_proxy_returns_the_apps_own_iterable() -> None:
    body = [b"x"]
    result = Tag()(simple_app(body))(make_environ(), lax_start_response)
    assert result is body


def test_direct_proxy_gives_the_app_the_servers_start_response() -> None:
    seen: list[object] = []
    body = [b"x"]

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        seen.append(start_response)
        start_response("200 OK", text_headers())
        return body

    result = hooked(on_request=lambda self: None)(app)(
        make_environ(), lax_start_response
    )
    assert result is body and seen == [lax_start_response]


def test_close_proxy_keeps_the_file_wrapper_object_and_chains_close() -> None:
    probe = Probe()
    inner: list[object] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", text_headers(3))
        wrapper = FileWrapper(CountingFile(probe, b"abc"))
        inner.append(wrapper)
        return wrapper

    environ = make_environ()
    result = CloseRecorder()(app)(environ, lax_start_response)
    assert result is inner[0]
    assert b"".join(result) == b"abc"
    result.close()  # type: ignore[attr-defined]
    result.close()  # type: ignore[attr-defined]
    assert probe.closes == 1
    assert [r.closes for r in records(environ)] == [1]


@pytest.mark.parametrize("counts_body", [False, True], ids=["close", "body"])
def test_outcome_tells_a_file_wrapper_was_handed_on(counts_body: bool) -> None:
    outcomes: list[Outcome] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", text_headers(3))
        return FileWrapper(io.BytesIO(b"abc"))

    served = run(capturing(outcomes, counts_body=counts_body)(app))
    assert isinstance(served.result, FileWrapper) and served.body == b"abc"
    [outcome] = outcomes
    assert outcome.file_handed_on and outcome.headers_sent
    assert outcome.bytes_sent == (3 if counts_body else 0)
    assert outcome.code == 200 and outcome.error is None


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "no-length"])
def test_body_proxy_file_wrapper_counts_its_length(length: bool) -> None:
    """With a Content-Length the wrapper is handed on and its length counted; an
    in-memory file with neither length nor fileno is iterated and counted."""
    environ = make_environ()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", text_headers(3 if length else None))
        return FileWrapper(io.BytesIO(b"abc"))

    outcome = run(BodyRecorder()(app), environ)
    assert outcome.body == b"abc"
    assert isinstance(outcome.result, FileWrapper) is length
    assert records(environ)[0].bytes_sent == 3


def test_file_wrapper_size_from_a_real_file(tmp_path: Any) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")
    environ = make_environ()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        handle = open(path, "rb")  # noqa: SIM115 - closed by the wrapper's close()
        handle.seek(4)
        return FileWrapper(handle)

    outcome = run(BodyRecorder()(app), environ)
    assert outcome.body == b"456789"
    assert records(environ)[0].bytes_sent == 6


def test_file_wrapper_with_slots_is_proxied_and_closed_once() -> None:
    probe = Probe()

    class SlottedWrapper:
        __slots__ = ("items",)

        def __init__(self, items: list[bytes]) -> None:
            self.items = items

        def __iter__(self) -> Iterator[bytes]:
            return iter(self.items)

        def close(self) -> None:
            probe.closes += 1

    environ = make_environ()
    environ["wsgi.file_wrapper"] = SlottedWrapper

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", text_headers())
        return SlottedWrapper([b"ab"])

    outcome = run(CloseRecorder()(app), environ)
    assert not isinstance(outcome.result, SlottedWrapper)
    assert outcome.body == b"ab"
    assert probe.closes == 1


def test_function_file_wrapper_as_in_uwsgi_is_wrapped() -> None:
    environ = make_environ()
    environ["wsgi.file_wrapper"] = lambda f, size=8192: FileWrapper(f, size)
    probe = Probe()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", text_headers())
        return environ["wsgi.file_wrapper"](CountingFile(probe, b"abc"))

    outcome = run(CloseRecorder()(app), environ)
    assert outcome.body == b"abc"
    assert probe.closes == 1


def test_filter_that_declines_hands_on_the_apps_iterable() -> None:
    decline = filtering(decide=lambda self, status, headers: False)
    body = [b"x"]
    assert decline(simple_app(body))(make_environ(), lax_start_response) is body


def _exc_info_after_a_png_app(
    environ: WSGIEnvironment, start_response: StartResponse
) -> Any:
    start_response("200 OK", [("Content-Type", "image/png")])

    def body() -> Iterator[bytes]:
        yield b""
        try:
            raise AppError
        except AppError:
            start_response("500 Oops", text_headers(len(b"error")), sys.exc_info())
        yield b"error"

    return body()


def test_declined_response_cannot_start_filtering_after_exc_info() -> None:
    """Once the app's iterable went to the server as is, a replacement response
    must not be filtered (nor its Content-Length dropped): the body would not go
    through the filter. The hook is told so: filterable is False."""
    seen: list[bool] = []

    def decide(self: Responder[Any], status: str, headers: Headers) -> bool:
        seen.append(self.filterable)
        wanted = (get_header(headers, "Content-Type") or "").startswith("text/")
        headers.append(("X-F", str(self.filterable and wanted)))
        return self.filterable and wanted

    layer = filtering(bytes.upper, decide=decide)
    outcome = run(layer(_exc_info_after_a_png_app))
    assert seen == [True, False]
    assert outcome.status == "500 Oops"
    assert outcome.header("X-F") == "False"
    assert outcome.body == b"error"  # not filtered
    assert outcome.header("Content-Length") == "5"


def test_a_filter_returned_although_not_filterable_is_refused() -> None:
    """A hook that insists on filtering a body already handed on as is (here the
    exc_info replacement after a declined start) is an error, not obeyed."""

    def decide(self: Responder[Any], status: str, headers: Headers) -> bool:
        return (get_header(headers, "Content-Type") or "").startswith("text/")

    layer = filtering(bytes.upper, decide=decide)
    outcome = run(layer(_exc_info_after_a_png_app))
    assert isinstance(outcome.error, RuntimeError)
    assert "filterable was False" in str(outcome.error)
    assert outcome.body == b""  # neither the replacement nor a filtered body


@pytest.mark.parametrize(
    "members",
    [{}, {"on_close": lambda self, outcome: None}, {"counts_body": True}],
    ids=["start", "close", "body"],
)
def test_on_start_returning_a_filter_without_filters_set_is_refused(
    members: dict[str, Any],
) -> None:
    layer = hooked(on_start=lambda self, status, headers: CallFilter(), **members)
    outcome = run(layer(simple_app([b"x"])))
    assert isinstance(outcome.error, TypeError)
    assert "set filters = True" in str(outcome.error)


# -- headers and status ---------------------------------------------------------------


def test_hooks_never_change_the_apps_header_list() -> None:
    shared = text_headers(1)
    app = simple_app([b"x"], shared)
    for layer in (Tag(), CloseRecorder(), Upper()):
        run(layer(app))
        assert shared == text_headers(1)


@pytest.mark.parametrize("kind", ["start", "close", "body", "filter"])
def test_replace_status_sends_another_status_and_only_for_that_start(
    kind: str,
) -> None:
    """replace_status() from on_start replaces the app's status; a later exc_info
    replacement goes through on_start again and is not replaced unless asked."""
    outcomes: list[Outcome] = []
    statuses: list[str] = []

    def on_start(self: Responder[Any], status: str, headers: Headers) -> None:
        statuses.append(status)
        if status.startswith("200"):
            self.replace_status("203 Non-Authoritative Information")

    members: dict[str, Any] = {"on_start": on_start}
    if kind != "start":
        members["on_close"] = lambda self, outcome: outcomes.append(outcome)
    if kind == "body":
        members["counts_body"] = True
    if kind == "filter":
        members["filters"] = True
    layer = hooked(**members)
    assert plan(layer) == kind

    outcome = run(layer(simple_app([b"x"])))
    assert outcome.status == "203 Non-Authoritative Information"
    replaced = run(layer(conformance.apps.exc_info_replace_app(Probe())))
    assert statuses == ["200 OK", "200 OK", "500 Internal Server Error"]
    assert replaced.status == "500 Internal Server Error"
    assert replaced.body == conformance.BODY
    if kind != "start":
        assert [o.status for o in outcomes] == [
            "203 Non-Authoritative Information",
            "500 Internal Server Error",
        ]
        assert outcomes[1].error is None


def test_filter_drops_content_length_and_keeps_it_on_head() -> None:
    app = simple_app([b"abc"], text_headers(3))
    get = run(Upper()(app))
    assert get.header("Content-Length") is None and get.body == b"ABC"
    head = run(Upper()(app), make_environ("HEAD"))
    assert head.header("Content-Length") == "3" and head.body == b"abc"


@pytest.mark.parametrize(
    "status", ["100 Continue", "204 No Content", "304 Not Modified"]
)
def test_filter_never_gives_a_bodiless_status_a_body(status: str) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response(status, [])
        return []

    adds = filtering(finish=lambda: b"trailer")
    outcome = run(adds(app))
    assert outcome.status == status and outcome.body == b""


def test_filter_order_write_then_iterable_then_finish() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", text_headers())
        write(b"a")
        write(b"")
        write(b"b")
        return [b"c", b"", b"d"]

    seen: list[bytes] = []

    def feed(data: bytes) -> bytes:
        seen.append(data)
        return data.upper()

    layer = filtering(feed, lambda: b"!")
    outcome = run(layer(app))
    assert outcome.chunks == [b"A", b"B", b"C", b"", b"D", b"!"]
    assert seen == [b"a", b"", b"b", b"c", b"", b"d"]


def test_filter_holding_data_back_sends_empty_chunks_not_nothing() -> None:
    held: list[bytes] = []

    def feed(data: bytes) -> bytes:
        held.append(data)
        return b""

    layer = filtering(feed, lambda: b"".join(held))
    outcome = run(layer(simple_app([b"a", b"b"])))
    assert outcome.chunks == [b"", b"", b"ab"]


def test_identity_filter_passes_bytes_and_drops_content_length() -> None:
    outcome = run(filtering()(simple_app([b"ab", b"c"], text_headers(3))))
    assert outcome.chunks == [b"ab", b"c"] and outcome.header("Content-Length") is None


def test_content_length_goes_even_if_on_start_rebuilds_the_headers() -> None:
    """The proxy drops Content-Length after the hook, from the list the hook left,
    even one it rebuilt in place (or a Content-Length it added itself)."""

    def decide(self: Responder[Any], status: str, headers: Headers) -> bool:
        headers[:] = [*headers, ("X-New", "list"), ("content-length", "99")]
        return True

    layer = filtering(lambda data: data + data, decide=decide)
    outcome = run(layer(simple_app([b"ab"], text_headers(2))))
    assert outcome.body == b"abab"
    assert outcome.header("Content-Length") is None
    assert outcome.header("X-New") == "list"


# -- start_response rules -------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [Tag(), CloseRecorder(), BodyRecorder(), Upper()],
    ids=["start", "close", "body", "filter"],
)
def test_second_start_response_without_exc_info_is_refused(layer: Middleware) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", text_headers())
        start_response("200 OK", text_headers())
        return []

    outcome = run(layer(app))
    assert isinstance(outcome.error, RuntimeError)
    assert "exc_info" in str(outcome.error)


def test_exc_info_of_nones_counts_as_no_exc_info() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", text_headers(), (None, None, None))
        return [b"x"]

    assert run(Tag()(app)).body == b"x"
    assert run(Upper()(app)).body == b"X"


@pytest.mark.parametrize("layer", [BodyRecorder(), Upper()], ids=["body", "filter"])
def test_proxy_reraises_exc_info_itself_once_bytes_went_out(layer: Middleware) -> None:
    """Even behind a server (or outer layer) that would accept the replacement."""
    errors: list[BaseException] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", text_headers())

        def body() -> Iterator[bytes]:
            yield b"sent"
            try:
                raise AppError("late")
            except AppError:
                try:
                    start_response("500 X", text_headers(), sys.exc_info())
                except AppError as exc:
                    errors.append(exc)
                    raise

        return body()

    result = layer(app)(make_environ(), lax_start_response)
    chunks: list[bytes] = []
    with pytest.raises(AppError, match="late"):
        chunks.extend(result)
    result.close()  # type: ignore[attr-defined]
    assert len(errors) == 1
    assert chunks == [b"SENT" if isinstance(layer, Upper) else b"sent"]


# -- close() on every path ------------------------------------------------------------


def test_close_is_idempotent_and_iteration_after_close_is_refused() -> None:
    probe = Probe()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", text_headers())
        return CountingIterable(probe, [b"a"])

    result: Any = BodyRecorder()(app)(make_environ(), lax_start_response)
    result.close()
    result.close()
    assert probe.closes == 1
    with pytest.raises(RuntimeError, match="after close"):
        iter(result)


def test_on_close_error_propagates_when_nothing_else_failed() -> None:
    probe = Probe()

    def on_close(self: Responder[Any], outcome: Outcome) -> None:
        raise AppError("in on_close")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", text_headers())
        return CountingIterable(probe, [b"a"])

    outcome = run(hooked(on_close=on_close)(app))
    assert isinstance(outcome.error, AppError) and probe.closes == 1


def test_on_close_error_is_logged_not_masking_the_inner_close_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    probe = Probe()

    def on_close(self: Responder[Any], outcome: Outcome) -> None:
        raise ValueError("hook failed too")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", text_headers())
        return CountingIterable(probe, [b"a"], fail_close=True)

    with caplog.at_level(logging.ERROR, logger="middleware.core"):
        outcome = run(hooked(on_close=on_close)(app))
    assert isinstance(outcome.error, AppError) and probe.closes == 1
    assert "on_close() raised" in caplog.text and "hook failed too" in caplog.text


def test_on_close_runs_and_is_logged_when_the_app_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    def on_close(self: Responder[Any], outcome: Outcome) -> None:
        calls.append("close")
        raise ValueError("hook")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        raise AppError("app")

    with caplog.at_level(logging.ERROR, logger="middleware.core"):
        outcome = run(hooked(on_close=on_close)(app))
    assert isinstance(outcome.error, AppError) and calls == ["close"]
    assert "on_close() raised while another error propagated" in caplog.text
    assert "ValueError: hook" in caplog.text


def test_on_error_failure_is_logged_and_the_original_error_propagates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def on_error(self: Responder[Any], exc: BaseException) -> None:
        raise ValueError("reporter broke")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", text_headers())
        yield b"a"
        raise AppError("app")

    with caplog.at_level(logging.ERROR, logger="middleware.core"):
        outcome = run(hooked(on_error=on_error)(app))
    assert isinstance(outcome.error, AppError)
    assert "on_error() raised" in caplog.text


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_on_start_raising_reaches_the_server_and_everything_closes_once(
    lazy: bool,
) -> None:
    """Eager: start_response raises inside app(), which returns nothing, so there is
    no iterable to close; on_close still runs once. Lazy: the error comes out of the
    first next(), and the app's iterable is closed once. Either way nothing went
    out, so the outcome is the server's 500."""
    probe = Probe()
    closes: list[tuple[str | None, str | None, bool]] = []

    def on_start(self: Responder[Any], status: str, headers: Headers) -> None:
        raise AppError("hook")

    def on_close(self: Responder[Any], outcome: Outcome) -> None:
        error = type(outcome.error).__name__ if outcome.error else None
        closes.append((error, outcome.status, outcome.headers_sent))

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        def body() -> Iterator[bytes]:
            start_response("200 OK", text_headers())
            yield b"a"

        if lazy:
            return CountingIterable(probe, body())
        start_response("200 OK", text_headers())
        return CountingIterable(probe, [b"never"])  # pragma: no cover - raised

    layer = hooked(on_start=on_start, on_close=on_close, counts_body=True)
    outcome = run(layer(app))
    assert isinstance(outcome.error, AppError)
    assert outcome.body == b""
    assert probe.closes == (1 if lazy else 0)
    assert closes == [("AppError", "500 Internal Server Error", False)]


def test_filter_raising_mid_stream_reaches_the_server_and_closes_once() -> None:
    probe = Probe()

    def feed(data: bytes) -> bytes:
        if data == b"bad":
            raise AppError("feed")
        return data

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", text_headers())
        return CountingIterable(probe, [b"ok", b"bad", b"never"])

    outcome = run(filtering(feed)(app))
    assert isinstance(outcome.error, AppError)
    assert outcome.body == b"ok" and probe.closes == 1


@pytest.mark.parametrize(
    "members",
    [{}, {"counts_body": True}, {"filters": True}],
    ids=["close", "body", "filter"],
)
def test_outcome_of_an_app_raising_after_write_is_the_status_that_went_out(
    members: dict[str, Any],
) -> None:
    """write() put the status and bytes on the wire before the app raised: the
    server cannot answer with a 500 any more, so the outcome is the app's status,
    sent, with the error."""
    outcomes: list[Outcome] = []
    layer = capturing(outcomes, **members)
    served = run(layer(conformance.apps.raise_after_write_app(Probe())))
    assert isinstance(served.error, AppError)
    assert served.status == "200 OK" and served.body == b"partial"
    [outcome] = outcomes
    assert isinstance(outcome.error, AppError)
    assert outcome.headers_sent
    assert outcome.status == "200 OK"


def test_declined_filter_with_on_close_closes_once_and_counts_the_body() -> None:
    """A filter layer that leaves a body alone still closes the app's iterable
    once and runs on_close once; as a filter proxy it sees (and counts) the body."""
    probe = Probe()
    outcomes: list[Outcome] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Type", "image/png")])
        return CountingIterable(probe, [b"png"])

    def decide(self: Responder[Any], status: str, headers: Headers) -> bool:
        return (get_header(headers, "Content-Type") or "").startswith("text/")

    layer = filtering(
        bytes.upper,
        decide=decide,
        on_close=lambda self, outcome: outcomes.append(outcome),
    )
    assert plan(layer) == "filter"
    outcome = run(layer(app))
    assert outcome.body == b"png" and probe.closes == 1
    [seen] = outcomes
    assert seen.bytes_sent == 3 and seen.headers_sent and seen.error is None
    result: Any = layer(app)(make_environ(), lax_start_response)
    assert b"".join(result) == b"png"
    result.close()
    result.close()
    assert probe.closes == 2 and len(outcomes) == 2


# -- per-request state ----------------------------------------------------------------


def test_one_stack_serves_many_threads_without_sharing_state() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        name = environ["PATH_INFO"].encode()
        start_response("200 OK", text_headers())
        for _ in range(20):
            yield name

    from middleware import compose

    stack = compose(app, BodyRecorder(), Upper(), CloseRecorder(), Tag())
    failures: list[str] = []

    def client(index: int) -> None:
        for _ in range(50):
            environ = make_environ(path=f"/t{index}")
            outcome = run(stack, environ)
            expected = f"/T{index}".encode() * 20
            if outcome.body != expected or records(environ)[-1].bytes_sent != len(
                expected
            ):
                failures.append(f"thread {index}: {outcome.body[:20]!r}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# -- the Middleware base and the helpers ----------------------------------------------


def test_middleware_refuses_a_non_callable_app() -> None:
    with pytest.raises(TypeError, match="Tag wraps a WSGI application"):
        Tag()("not an app")  # type: ignore[arg-type]


def test_middleware_without_responder_says_so() -> None:
    class Empty(Middleware):
        pass

    with pytest.raises(TypeError, match="Empty sets no responder class"):
        Empty()(simple_app([]))


def test_layer_exposes_app_and_configuration_and_repr() -> None:
    app = simple_app([])
    layer = Tag(tag="v")(app)
    assert isinstance(layer, Layer)
    assert layer.app is app and layer.middleware.tag == "v"  # type: ignore[attr-defined]
    assert repr(layer).startswith("Tag(tag='v')(<function")


def test_repr_hides_secret_options() -> None:
    class Secretive(Middleware):
        responder = Responder
        secret_options = frozenset({"secret"})

        def __init__(self) -> None:
            self.secret = "hunter2"
            self.name = "x"
            self._private = 1

    assert repr(Secretive()) == "Secretive(secret=***, name='x')"


@pytest.mark.parametrize(
    ("status", "code"),
    [("200 OK", 200), ("404 Not Found", 404), ("", 0), ("abc", 0)],
)
def test_status_code(status: str, code: int) -> None:
    assert status_code(status) == code


def test_outcome_code() -> None:
    assert Outcome("404 Not Found", [], True, 0, None, False).code == 404
    assert Outcome(None, None, False, 0, None, False).code == 0


@pytest.mark.parametrize(
    ("method", "status", "forbidden"),
    [
        pytest.param("GET", "200 OK", False, id="get-200"),
        pytest.param("HEAD", "200 OK", True, id="head"),
        pytest.param("GET", "101 Switching Protocols", True, id="1xx"),
        pytest.param("GET", "204 No Content", True, id="204"),
        pytest.param("GET", "304 Not Modified", True, id="304"),
        pytest.param("POST", "500 Internal Server Error", False, id="post-500"),
    ],
)
def test_body_forbidden(method: str, status: str, forbidden: bool) -> None:
    assert body_forbidden(method, status) is forbidden


def test_header_helpers_are_case_insensitive() -> None:
    headers = [("Content-Length", "3"), ("X-A", "1"), ("content-length", "4")]
    assert get_header(headers, "CONTENT-LENGTH") == "3"
    assert get_header(headers, "missing") is None
    remove_header(headers, "Content-length")
    assert headers == [("X-A", "1")]


def test_on_request_runs_before_the_app_and_can_set_environ_keys() -> None:
    def on_request(self: Responder[Any]) -> None:
        self.environ["middleware.request_id"] = "r-1"

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", text_headers())
        return [environ["middleware.request_id"].encode()]

    layer = hooked(on_request=on_request)
    assert plan(layer) == "direct"
    assert run(layer(app)).body == b"r-1"


class _FailingRecovery(Responder[Any]):
    def recover(
        self, exc: Exception
    ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        raise RuntimeError("the recovery itself failed")


class FailingRecovery(Middleware):
    responder = _FailingRecovery


class _DecliningRecovery(Responder[Any]):
    declined: ClassVar[list[Exception]] = []

    def recover(
        self, exc: Exception
    ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        self.declined.append(exc)
        return None


class DecliningRecovery(Middleware):
    responder = _DecliningRecovery


def test_a_recover_hook_that_raises_is_logged_and_the_app_error_propagates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = conformance.apps.raise_before_start_app(conformance.Probe())
    with caplog.at_level(logging.ERROR, logger="middleware.core"):
        outcome = run(FailingRecovery()(app))
    assert isinstance(outcome.error, AppError)
    assert "_FailingRecovery.recover() raised" in caplog.text


def test_recover_returning_none_lets_the_error_propagate_and_is_not_asked_late() -> (
    None
):
    _DecliningRecovery.declined.clear()
    before = conformance.apps.raise_before_start_app(conformance.Probe())
    outcome = run(DecliningRecovery()(before))
    assert isinstance(outcome.error, AppError)
    assert len(_DecliningRecovery.declined) == 1
    late = conformance.apps.raise_iterating_app(conformance.Probe(), first=b"partial")
    outcome = run(DecliningRecovery()(late))
    assert isinstance(outcome.error, AppError) and outcome.body == b"partial"
    assert len(_DecliningRecovery.declined) == 1  # bytes were out: never asked


# -- on_request answering the request itself ------------------------------------------


class _Gate(Responder["Gate"]):
    def on_request(self) -> Answer | None:
        if self.environ.get("PATH_INFO") == "/open":
            return None
        body = CountingFile(self.middleware.probe, b"denied")
        headers = [("Content-Type", "text/plain"), ("Content-Length", "6")]
        return ("403 Forbidden", headers, FileWrapper(body))


class Gate(Middleware):
    responder = _Gate

    def __init__(self) -> None:
        self.probe = conformance.Probe()


@pytest.mark.parametrize("kind", conformance.VALIDATORS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_on_request_may_answer_without_the_app(kind: str, method: str) -> None:
    called: list[str] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        called.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    gate = Gate()
    wrapped = conformance.sandwich(kind, conformance.Subject("gate", gate), app)
    outcome = conformance.run(wrapped, conformance.make_environ(method, "/closed"))
    assert called == []
    assert outcome.status == "403 Forbidden"
    assert outcome.body == (b"denied" if method == "GET" else b"")
    assert gate.probe.closes == 1  # the file is closed, iterated or not
    outcome = conformance.run(wrapped, conformance.make_environ(method, "/open"))
    assert called == ["/open"] and outcome.status == "200 OK"


def test_on_request_answer_hands_the_file_wrapper_on() -> None:
    outcome = conformance.run(Gate()(lambda e, s: []), conformance.make_environ())
    assert isinstance(outcome.result, FileWrapper)


class _Retired(Middleware):
    """Answers /old with one shared answer; passes the rest on."""

    def __init__(self) -> None:
        self.probe = conformance.Probe()
        self.gone: Answer = (
            "410 Gone",
            [("Content-Type", "text/plain"), ("Content-Length", "5")],
            [b"gone\n"],
        )

    def answer(self, environ: WSGIEnvironment) -> Answer | None:
        if environ["PATH_INFO"] == "/old":
            body = conformance.apps.CountingIterable(self.probe, [b"gone\n"])
            return self.gone[0], self.gone[1], body
        return None


@pytest.mark.parametrize("kind", conformance.VALIDATORS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_answer_middleware(kind: str, method: str) -> None:
    retired = _Retired()
    app = conformance.apps.list_app(conformance.Probe())
    outcome = conformance.answered(
        conformance.Subject("retired", retired),
        app,
        {"REQUEST_METHOD": method, "PATH_INFO": "/old"},
    )
    assert outcome.status == "410 Gone"
    assert outcome.body == (b"gone\n" if method == "GET" else b"")
    assert retired.probe.closes == 3  # once per run, iterated or not

    # The server gets a copy: a server adding to it never changes the shared answer.
    def adding(status: str, headers: Headers, exc_info: Any = None) -> Any:
        headers.append(("Date", "now"))

    retired(app)(conformance.make_environ(method, "/old"), adding)
    assert len(retired.gone[1]) == 2
    passed = conformance.run(retired(app), conformance.make_environ(method, "/new"))
    assert passed.status == "200 OK"
    assert type(passed.result) is list  # the app's own iterable, no proxy


class _Scoped(_Retired):
    """_Retired, answering only under /old: the layer need not ask it elsewhere."""

    answers_under = "/old"

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def answer(self, environ: WSGIEnvironment) -> Answer | None:
        self.asked.append(environ["PATH_INFO"])
        return super().answer(environ)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_answers_under_skips_answer_outside_the_prefix(method: str) -> None:
    scoped = _Scoped()
    app = conformance.apps.list_app(conformance.Probe())
    cases = [("/old", "410 Gone"), ("/new", "200 OK"), ("/older", "200 OK")]
    for path, status in cases:
        outcome = conformance.run(scoped(app), conformance.make_environ(method, path))
        assert outcome.status == status
    assert scoped.asked == ["/old", "/older"]  # a prefix of the path, not a segment
    outcome = conformance.answered(
        conformance.Subject("scoped", scoped),
        app,
        {"REQUEST_METHOD": method, "PATH_INFO": "/old"},
    )
    assert outcome.status == "410 Gone"


def test_a_middleware_with_neither_responder_nor_answer_is_refused() -> None:
    class Nothing(Middleware):
        pass

    with pytest.raises(TypeError, match="overrides neither answer"):
        Nothing()(lambda environ, start_response: [])


class _GuardedEntry(Responder[Middleware]):
    """Fails in its own on_request, and answers that failure itself."""

    def on_request(self) -> None:
        raise AppError("on_request failed")

    def recover(self, exc: Exception) -> tuple[str, Headers, bytes] | None:
        body = f"recovered: {exc}".encode()
        return "503 Service Unavailable", [("Content-Length", str(len(body)))], body

    def on_close(self, outcome: Outcome) -> None:
        self.environ["tests.outcome"] = outcome


class GuardedEntry(Middleware):
    responder = _GuardedEntry


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_recover_answers_an_error_of_on_request(method: str) -> None:
    called: list[bool] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        called.append(True)
        return []

    environ = make_environ(method)
    served = run(GuardedEntry()(app), environ)
    assert called == [] and served.error is None
    assert served.status == "503 Service Unavailable"
    assert served.body == (b"recovered: on_request failed" if method == "GET" else b"")
    outcome = environ["tests.outcome"]
    assert outcome.status == "503 Service Unavailable"
    assert isinstance(outcome.error, AppError) and outcome.headers_sent


def test_a_close_proxy_refuses_iteration_after_close() -> None:
    result: Any = CloseRecorder()(simple_app([b"x"]))(
        make_environ(), lax_start_response
    )
    result.close()
    with pytest.raises(RuntimeError, match="iterated after close"):
        iter(result)


# -- found by review: edges of the error path ------------------------------------


class _Watching(Responder[Middleware]):
    """Records its hooks into environ["tests.log"]."""

    def on_error(self, exc: BaseException) -> None:
        self.environ.setdefault("tests.log", []).append(("error", type(exc).__name__))

    def recover(self, exc: Exception) -> tuple[str, Headers, bytes] | None:
        return "500 Internal Server Error", [("Content-Length", "1")], b"x"

    def on_close(self, outcome: Outcome) -> None:
        self.environ.setdefault("tests.log", []).append(("close", outcome.status))


class Watching(Middleware):
    responder = _Watching


def test_on_close_runs_when_the_server_refuses_the_replacement() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", text_headers())
        raise AppError("after start")

    def refusing(status: str, headers: Any, exc_info: Any = None) -> Any:
        if exc_info is not None:  # as a server whose headers are already out
            raise exc_info[1].with_traceback(exc_info[2])
        return lambda data: None

    environ = make_environ()
    with pytest.raises(AppError):
        Watching()(app)(environ, refusing)
    assert environ["tests.log"] == [
        ("error", "AppError"),
        ("close", "500 Internal Server Error"),
    ]


class _Lazy(Responder[Middleware]):
    def on_start(self, status: str, headers: Headers) -> None:
        raise AppError("on_start failed")

    def on_close(self, outcome: Outcome) -> None:
        self.environ["tests.outcome"] = outcome


class Lazy(Middleware):
    responder = _Lazy


def test_a_close_layer_sees_an_on_start_error_raised_in_a_lazy_generator() -> None:
    environ = make_environ()
    app = conformance.apps.lazy_app(Probe())
    served = run(Lazy()(app), environ)
    assert isinstance(served.error, AppError)
    outcome = environ["tests.outcome"]
    assert isinstance(outcome.error, AppError)
    assert outcome.status == "500 Internal Server Error"


class _To304(Responder[Middleware]):
    filters = True

    def on_start(self, status: str, headers: Headers) -> BodyFilter | None:
        self.replace_status("304 Not Modified")
        return UpperFilter()


class To304(Middleware):
    responder = _To304


def test_a_filter_with_a_replaced_bodiless_status_is_refused() -> None:
    served = run(To304()(simple_app([b"x"])), make_environ())
    assert isinstance(served.error, RuntimeError)
    assert "carries no body" in str(served.error)


class Sequence:
    """Iterable only through the old sequence protocol (__getitem__)."""

    def __getitem__(self, index: int) -> bytes:
        if index < 2:
            return b"q"
        raise IndexError(index)


@pytest.mark.parametrize("layer", [BodyRecorder(), CloseRecorder(), Upper()])
def test_an_iterable_with_only_getitem_is_accepted(layer: Middleware) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", text_headers())
        return Sequence()

    served = run(layer(app), make_environ())
    assert served.error is None
    assert served.body.lower() == b"qq"


def test_a_status_the_server_refused_may_be_given_again() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        try:
            start_response("bad", text_headers())
        except ValueError:
            start_response("200 OK", text_headers())
        return [b"x"]

    def strict(status: str, headers: Any, exc_info: Any = None) -> Any:
        if not status[:3].isdigit():
            raise ValueError(f"malformed status {status!r}")
        return lambda data: None

    for layer in (Tag(), CloseRecorder(), BodyRecorder(), Upper()):
        result: Any = layer(app)(make_environ(), strict)
        assert b"".join(result).lower() == b"x"
        close = getattr(result, "close", None)
        if close is not None:
            close()


def test_the_kit_fails_a_layer_that_loses_the_body_even_under_python_O() -> None:
    """The kit's checks are real raises, not ``assert`` statements ``-O`` strips."""
    import subprocess

    code = (
        "from middleware import testing\n"
        "def dropping(app):\n"
        "    def wrapped(environ, start_response):\n"
        "        result = app(environ, start_response)\n"
        "        getattr(result, 'close', lambda: None)()\n"
        "        return [b'']\n"
        "    return wrapped\n"
        "try:\n"
        "    testing.check_all(testing.Subject('dropping', dropping))\n"
        "except AssertionError as exc:\n"
        "    print('failed:', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-O", "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("failed: dropping-list-"), done.stdout


def test_a_released_response_is_the_apps_own_iterable_and_its_end_unseen() -> None:
    """release() from on_start: the server gets the app's own iterable; on_error and
    on_close are not called for what follows (a session with nothing to write)."""
    seen: list[str] = []

    class Sometimes(Responder["Watching"]):
        def on_start(self, status: str, headers: Any) -> None:
            if self.environ.get("PATH_INFO") == "/released":
                self.release()

        def on_error(self, exc: BaseException) -> None:
            seen.append("error")

        def on_close(self, outcome: Outcome) -> None:
            seen.append(f"close {outcome.status}")

    class Watching(Middleware):
        responder = Sometimes

    body = [b"app's own"]

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", text_headers())
        return body

    layer = Watching()(app)
    seen_result: list[object] = []

    def server_start(status: str, headers: Any, exc_info: Any = None) -> Any:
        return lambda data: None

    result = layer(make_environ("GET", "/released"), server_start)
    seen_result.append(result)
    assert result is body and seen == []
    watched = run(layer, make_environ("GET", "/watched"))
    assert watched.body == b"app's own" and seen == ["close 200 OK"]
