"""ErrorCatcher: the conformance kit, every error path, the pages and reporting."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from middleware import ErrorCatcher, compose
from middleware import testing as conformance
from middleware.errors import (
    ANSWERED,
    OUTCOME_KEY,
    ErrorPage,
    render_html,
    safe_environ,
)
from middleware.http import prefers_json
from middleware.testing import AppError, Served, Style, Subject, make_environ, run
from middleware.wsgi import ExcInfo, StartResponse, WSGIApplication, WSGIEnvironment


def check_caught(style: Style, outcome: Served) -> None:
    if style.error is not None and style.caught:
        assert outcome.header("Content-Type") == "text/html; charset=utf-8"
        assert outcome.header("Cache-Control") == "no-store"
        assert b"Internal Server Error" in outcome.body
        assert b"Traceback" not in outcome.body and b"AppError" not in outcome.body


test_conformance = conformance.suite(
    Subject("errors", ErrorCatcher(), catches_errors=True, check=check_caught),
    Subject(
        "errors-debug",
        ErrorCatcher(debug=True),
        catches_errors=True,
        environ={"HTTP_ACCEPT": "application/json"},
    ),
)


# -- a strict server that insists on the exc_info protocol -----------------------------


class StrictServer:
    """start_response as PEP 3333 wants it: a second call without exc_info fails
    the test; with exc_info after bytes went out it re-raises."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, str]], Any]] = []
        self.sent = False
        self.chunks: list[bytes] = []

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        if self.calls and exc_info is None:
            pytest.fail("start_response called again without exc_info")
        if exc_info is not None and self.sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.calls.append((status, list(headers), exc_info))
        return self.write

    def write(self, data: bytes) -> None:
        self.sent = self.sent or bool(data)
        self.chunks.append(data)

    def serve(self, app: WSGIApplication, environ: WSGIEnvironment) -> bytes:
        result = app(environ, self.start_response)
        try:
            for chunk in result:
                self.sent = self.sent or bool(chunk)
                self.chunks.append(chunk)
        finally:
            getattr(result, "close", lambda: None)()
        return b"".join(self.chunks)


class Closing:
    """An app iterable recording its close() calls."""

    def __init__(self, items: Iterator[bytes]) -> None:
        self.items = items
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        return self.items

    def close(self) -> None:
        self.closed += 1


def failing_app(where: str) -> tuple[WSGIApplication, list[Closing]]:
    made: list[Closing] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        if where == "before-start":
            raise ValueError("boom")
        write = start_response("200 OK", [("Content-Type", "application/json")])
        if where == "after-start":
            raise ValueError("boom")
        if where == "after-write":
            write(b'{"partial":')
            raise ValueError("boom")

        def body() -> Iterator[bytes]:
            if where == "after-empty":
                yield b""
            if where == "after-first":
                yield b'{"partial":'
            raise ValueError("boom")

        made.append(Closing(body()))
        return made[0]

    return app, made


@pytest.mark.parametrize("where", ["before-start", "after-start", "after-empty"])
def test_error_before_any_byte_is_a_fresh_500_with_exc_info(where: str) -> None:
    app, made = failing_app(where)
    server = StrictServer()
    body = server.serve(ErrorCatcher()(app), make_environ())
    status, headers, exc_info = server.calls[-1]
    assert status == "500 Internal Server Error"
    # Fresh headers, never the app's (its JSON Content-Type is gone).
    assert dict(headers) == {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Length": str(len(body)),
        "Cache-Control": "no-store",
    }
    assert exc_info is not None and isinstance(exc_info[1], ValueError)
    assert b"Internal Server Error" in body and b"boom" not in body
    if made:
        assert made[0].closed == 1


@pytest.mark.parametrize("where", ["after-first", "after-write"])
def test_error_after_bytes_went_out_is_reported_and_reraised(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    app, made = failing_app(where)
    server = StrictServer()
    with pytest.raises(ValueError, match="boom"):
        server.serve(ErrorCatcher()(app), make_environ())
    assert [call[0] for call in server.calls] == ["200 OK"]
    assert b"".join(server.chunks) == b'{"partial":'  # nothing injected
    assert "GET / raised ValueError" in caplog.text
    if made:
        assert made[0].closed == 1


def test_error_in_close_is_reported_never_masked_nor_a_str_chunk(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class FailingClose(Closing):
        def close(self) -> None:
            super().close()
            raise OSError("close failed")

    iterable = FailingClose(iter([b"done"]))

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iterable

    server = StrictServer()
    with pytest.raises(OSError, match="close failed"):
        server.serve(ErrorCatcher()(app), make_environ())
    assert server.chunks == [b"done"]
    assert iterable.closed == 1
    assert "raised OSError" in caplog.text


def test_close_error_during_recovery_is_reported_and_the_500_still_goes() -> None:
    reported: list[str] = []

    class FailingClose(Closing):
        def close(self) -> None:
            super().close()
            raise OSError("close failed too")

    def body() -> Iterator[bytes]:
        yield from ()
        raise ValueError("boom")

    iterable = FailingClose(body())

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        return iterable

    catcher = ErrorCatcher(
        on_error=[lambda info, env: reported.append(info[0].__name__)]
    )
    outcome = run(catcher(app))
    assert outcome.status.startswith("500") and outcome.error is None
    assert iterable.closed == 1
    assert reported == ["ValueError", "OSError"]


def test_head_gets_the_500_headers_and_no_body() -> None:
    app, _ = failing_app("before-start")
    outcome = run(ErrorCatcher()(app), make_environ("HEAD"))
    assert outcome.status.startswith("500") and outcome.body == b""
    assert int(outcome.header("Content-Length") or 0) > 0


def test_an_outer_observer_sees_the_500_through_exc_info() -> None:
    from .sample_middleware import CloseRecorder

    app, _ = failing_app("after-empty")
    environ = make_environ()
    outcome = run(compose(app, CloseRecorder(), ErrorCatcher()), environ)
    assert outcome.status.startswith("500")
    (record,) = environ["tests.records"]
    assert record.status == "500 Internal Server Error" and record.closes == 1


# -- what is never caught --------------------------------------------------------------


class Expected(Exception):
    pass


@pytest.mark.parametrize(
    "exc", [KeyboardInterrupt(), SystemExit(1), GeneratorExit(), Expected("flow")]
)
def test_never_caught_and_expected_types_pass_untouched(
    exc: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    reported: list[object] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        raise exc

    catcher = ErrorCatcher(expected=Expected, on_error=[lambda *a: reported.append(a)])
    server = StrictServer()
    with pytest.raises(type(exc)) as raised:
        server.serve(catcher(app), make_environ())
    assert raised.value is exc
    assert server.calls == [] and reported == []
    assert "middleware.errors" not in caplog.text


def test_expected_types_in_a_tuple_and_subclasses() -> None:
    class Sub(Expected):
        pass

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        raise Sub()

    with pytest.raises(Sub):
        run_strict(ErrorCatcher(expected=(KeyError, Expected))(app))


def run_strict(app: WSGIApplication, environ: WSGIEnvironment | None = None) -> bytes:
    return StrictServer().serve(app, environ or make_environ())


# -- reporting -------------------------------------------------------------------------


def test_reporters_each_run_and_a_failing_one_masks_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[tuple[ExcInfo, WSGIEnvironment]] = []

    def broken(exc_info: ExcInfo, environ: WSGIEnvironment) -> None:
        raise RuntimeError("reporter down")

    def good(exc_info: ExcInfo, environ: WSGIEnvironment) -> None:
        seen.append((exc_info, environ))

    app, _ = failing_app("before-start")
    environ = make_environ()
    environ["middleware.request_id"] = "req-42"
    environ["PATH_INFO"] = "/orders"
    body = run_strict(ErrorCatcher(on_error=[broken, good])(app), environ)
    assert b"req-42" in body
    ((exc_info, reported_environ),) = seen
    assert exc_info[0] is ValueError and reported_environ is environ
    assert "error reporter" in caplog.text and "reporter down" in caplog.text
    (record,) = [r for r in caplog.records if r.getMessage().startswith("GET /orders")]
    assert record.name == "middleware.errors" and record.levelno == logging.ERROR
    assert record.getMessage() == (
        "GET /orders raised ValueError (request id req-42): answered 500"
    )
    assert record.__dict__["outcome"] == ANSWERED == environ[OUTCOME_KEY]
    assert record.exc_info is not None and record.exc_info[0] is ValueError
    assert record.__dict__["request_id"] == "req-42"
    assert record.__dict__["url.path"] == "/orders"


def test_secrets_never_reach_the_log_record(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = failing_app("before-start")
    environ = secret_environ()
    run_strict(ErrorCatcher()(app), environ)
    text = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    for secret in SECRETS:
        assert secret not in text


# -- the pages -------------------------------------------------------------------------

SECRETS = ["Basic dXNlcjpodW50ZXIy", "sessionid=abc123", "s3cr3t-value", "tok-999"]


def secret_environ() -> WSGIEnvironment:
    environ = make_environ()
    environ.update(
        {
            "HTTP_AUTHORIZATION": SECRETS[0],
            "HTTP_COOKIE": SECRETS[1],
            "APP_SECRET_KEY": SECRETS[2],
            "HTTP_X_API_TOKEN": SECRETS[3],
            "QUERY_STRING": f"page=2&access_token={SECRETS[3]}",
        }
    )
    return environ


def test_production_page_shows_no_traceback_no_message_and_escapes_the_request_id() -> (
    None
):
    app, _ = failing_app("before-start")
    environ = make_environ()
    environ["middleware.request_id"] = "<script>alert(1)</script>"
    body = run_strict(ErrorCatcher()(app), environ)
    assert b"<script>alert" not in body and b"&lt;script&gt;" in body
    assert (
        b"boom" not in body and b"ValueError" not in body and b"failing_app" not in body
    )


def test_debug_page_renders_frames_escaped_and_hides_secrets() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        hides_its_frame()
        return []

    body = run_strict(ErrorCatcher(debug=True)(app), secret_environ()).decode()
    assert "ValueError: bad &lt;input&gt; &amp; more" in body  # message escaped
    assert "test_errors.py" in body and "in <code>app</code>" in body
    assert "hides_its_frame()" in body  # the failing line of the app's frame
    assert "in <code>hides_its_frame</code>" not in body  # __traceback_hide__
    assert "in <code>raises_visibly</code>" in body
    assert "raise ValueError(&quot;bad" in body  # its source line, escaped
    for secret in SECRETS:
        assert secret not in body
    assert "HTTP_AUTHORIZATION" in body and "[hidden]" in body
    assert "page=2" in body


def hides_its_frame() -> None:
    __traceback_hide__ = True  # noqa: F841 - read from the frame by the renderer
    raises_visibly()


def raises_visibly() -> None:
    raise ValueError("bad <input> & more")


def test_debug_page_shows_the_chain_of_exceptions() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        try:
            lookup: dict[str, int] = {}
            lookup["missing"]
        except KeyError as exc:
            raise RuntimeError("while handling") from exc

    body = run_strict(ErrorCatcher(debug=True)(app)).decode()
    assert body.index("KeyError: &#x27;missing&#x27;") < body.index("RuntimeError")


@pytest.mark.parametrize(
    ("accept", "wants_json"),
    [
        (None, False),
        ("*/*", False),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("application/json", True),
        ("application/json, text/plain, */*", True),  # axios
        ("application/*", True),
        ("text/html;q=0.5, application/json", True),
        ("application/json;q=0.5, text/html", False),
        ("application/json;q=0, */*", False),
        ("text/*", False),
        ("garbage;;;", False),
    ],
)
def test_prefers_json(accept: str | None, wants_json: bool) -> None:
    assert prefers_json(accept) is wants_json


def test_json_body_in_production_and_debug() -> None:
    app, _ = failing_app("before-start")
    environ = make_environ()
    environ["HTTP_ACCEPT"] = "application/json"
    environ["middleware.request_id"] = "r1"
    body = json.loads(run_strict(ErrorCatcher()(app), environ))
    assert body == {"error": "Internal Server Error", "status": 500, "request_id": "r1"}
    environ = make_environ()
    environ["HTTP_ACCEPT"] = "application/json"
    debug = json.loads(run_strict(ErrorCatcher(debug=True)(app), environ))
    assert debug["request_id"] is None and debug["exception"] == "ValueError: boom"
    frames = debug["traceback"][-1]["frames"]
    assert frames[-1]["code"] == 'raise ValueError("boom")'


def test_custom_renderer_option_and_override() -> None:
    pages: list[ErrorPage] = []

    def render(page: ErrorPage) -> tuple[str, bytes]:
        pages.append(page)
        return "text/plain", f"oops {page.request_id}".encode()

    app, _ = failing_app("before-start")
    environ = make_environ()
    environ["middleware.request_id"] = "r9"
    outcome = run(ErrorCatcher(render=render)(app), environ)
    assert outcome.body == b"oops r9" and outcome.header("Content-Length") == "7"
    assert pages[0].exc_info[0] is ValueError and not pages[0].debug

    class Branded(ErrorCatcher):
        def render(self, page: ErrorPage) -> tuple[str, bytes]:
            return "text/html", b"<h1>Sorry</h1>"

    assert run(Branded()(app)).body == b"<h1>Sorry</h1>"


@pytest.mark.parametrize(
    "render",
    [
        lambda page: 1 / 0,
        lambda page: ("text/plain", "a str, not bytes"),
        lambda page: None,
    ],
)
def test_a_failing_renderer_gives_a_plain_500(
    render: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = failing_app("before-start")
    outcome = run(ErrorCatcher(render=render)(app))
    assert outcome.status.startswith("500") and outcome.error is None
    assert outcome.body == b"500 Internal Server Error\n"
    assert "rendering the error page failed" in caplog.text


def test_safe_environ_hides_credentials() -> None:
    shown = dict(safe_environ(secret_environ()))
    assert shown["HTTP_AUTHORIZATION"] == shown["HTTP_COOKIE"] == "[hidden]"
    assert shown["APP_SECRET_KEY"] == shown["HTTP_X_API_TOKEN"] == "[hidden]"
    assert shown["QUERY_STRING"] == "page=2&access_token=[hidden]"
    assert shown["REQUEST_METHOD"] == "GET"


def test_render_html_without_request_id() -> None:
    try:
        raise ValueError("x")
    except ValueError:
        info: Any = sys.exc_info()
    page = ErrorPage(info, make_environ(), None, False, False)
    assert b"Request id" not in render_html(page)


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"debug": "yes"}, "debug: expected True or False, got 'yes'"),
        ({"on_error": print}, "on_error: expected a list or tuple of callables"),
        ({"on_error": [1]}, "on_error: expected a list or tuple of callables"),
        ({"expected": ValueError()}, "expected: expected exception classes"),
        ({"expected": [int]}, "expected: expected exception classes"),
        (
            {"render": "page.html"},
            "render: expected a callable or None, got 'page.html'",
        ),
    ],
)
def test_bad_configuration_names_the_option(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        ErrorCatcher(**kwargs)


def test_conformance_of_a_raising_app_with_the_catcher_debug() -> None:
    # Errors are AppError in the kit: the debug JSON names it.
    app = conformance.apps.raise_before_start_app(conformance.Probe())
    environ = make_environ()
    environ["HTTP_ACCEPT"] = "application/json"
    body = json.loads(run(ErrorCatcher(debug=True)(app), environ).body)
    assert body["exception"] == f"{AppError.__qualname__}: before start_response"
