"""AccessLog: the conformance kit, exact lines, bytes, statuses, escaping, trust and
request ids."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from middleware import AccessLog, ErrorCatcher, ProxyHeaders, compose
from middleware import testing as conformance
from middleware.access_log import RequestIdFilter, escape, request_id_var
from middleware.access_log import middleware as access_log_module
from middleware.testing import AppError, Served, Style, Subject, make_environ, run
from middleware.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class Records(logging.Handler):
    """Keeps the records of one logger, for the kit's checks."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


KIT_LOGGER = logging.getLogger("tests.access.kit")
KIT_RECORDS = Records()
KIT_LOGGER.addHandler(KIT_RECORDS)
KIT_LOGGER.propagate = False
KIT_LOGGER.setLevel(logging.INFO)


def check_one_line(style: Style, outcome: Served) -> None:
    """Exactly one line per request, with the final status and the bytes sent."""
    request_id = outcome.environ["middleware.request_id"]
    mine = [r for r in KIT_RECORDS.records if r.__dict__["request_id"] == request_id]
    assert len(mine) == 1, mine
    fields = mine[0].__dict__
    if outcome.error is not None and not outcome.headers_sent:
        expected: int | None = 500  # what the server answers to an early error
    elif outcome.status:
        expected = int(outcome.status[:3])
    else:
        expected = None  # the client left before the app started a response
    assert fields["http.response.status_code"] == expected
    if not style.bodiless:
        assert fields["bytes"] == len(outcome.body)
    if outcome.status:
        assert outcome.header("X-Request-ID") == request_id


test_conformance = conformance.suite(
    Subject("access-log", AccessLog(logger=KIT_LOGGER), check=check_one_line)
)


# -- helpers ---------------------------------------------------------------------------

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.fixture
def records(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[logging.LogRecord]]:
    monkeypatch.setattr(access_log_module, "wall_clock", lambda: NOW)
    logger = logging.getLogger("tests.access")
    handler = Records()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def serve(
    layer: Any, app: WSGIApplication, method: str = "GET", **environ: Any
) -> Served:
    env = make_environ(method, environ.pop("path", "/"))
    env.update(
        REMOTE_ADDR="203.0.113.9",
        SERVER_PROTOCOL="HTTP/1.1",
        HTTP_REFERER="https://example.com/from",
        HTTP_USER_AGENT="curl/8.5",
    )
    env.update(environ)
    return run(layer(app), env, abandon_after=env.pop("abandon_after", None))


def hello(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


# -- exact lines -----------------------------------------------------------------------


def test_combined_and_common_lines(records: list[logging.LogRecord]) -> None:
    serve(AccessLog("tests.access", utc=True), hello, QUERY_STRING="a=1")
    serve(
        AccessLog("tests.access", format="common", utc=True), hello, REMOTE_USER="ann"
    )
    assert [r.getMessage() for r in records] == [
        '203.0.113.9 - - [14/Nov/2023:22:13:20 +0000] "GET /?a=1 HTTP/1.1" 200 5 '
        '"https://example.com/from" "curl/8.5"',
        '203.0.113.9 - ann [14/Nov/2023:22:13:20 +0000] "GET / HTTP/1.1" 200 5',
    ]
    assert records[0].levelno == logging.INFO


def test_json_line_and_extra_fields(records: list[logging.LogRecord]) -> None:
    serve(
        AccessLog("tests.access", format="json", utc=True),
        hello,
        QUERY_STRING="a=1",
        path="/items",
    )
    (record,) = records
    line = json.loads(record.getMessage())
    request_id = line.pop("request_id")
    assert len(request_id) == 32 and int(request_id, 16) >= 0
    assert 0 <= line.pop("duration_ms") < 1000
    assert line == {
        "time": "2023-11-14T22:13:20+00:00",
        "http.request.method": "GET",
        "url.path": "/items",
        "url.query": "a=1",
        "http.response.status_code": 200,
        "client.address": "203.0.113.9",
        "user.name": None,
        "user_agent.original": "curl/8.5",
        "http.request.header.referer": "https://example.com/from",
        "bytes": 5,
        "error.type": None,
    }
    assert record.__dict__["url.path"] == "/items"
    assert record.__dict__["request_id"] == request_id


def test_custom_format_with_every_atom(records: list[logging.LogRecord]) -> None:
    template = (
        "{h}|{l}|{u}|{t}|{r}|{m}|{U}|{q}|{H}|{s}|{B}|{b}|{f}|{a}|{p}|{E}|"
        "{User-Agent}i|{Content-Type}o|{REMOTE_ADDR}e|{X-Missing}i|{{literal}}|{s}i"
    )
    serve(AccessLog("tests.access", format=template, utc=True), hello, QUERY_STRING="x")
    (record,) = records
    assert record.getMessage() == (
        "203.0.113.9|-|-|[14/Nov/2023:22:13:20 +0000]|GET /?x HTTP/1.1|GET|/|x|"
        f"HTTP/1.1|200|5|5|https://example.com/from|curl/8.5|<{os.getpid()}>|-|"
        "curl/8.5|text/plain|203.0.113.9|-|{literal}|200i"
    )


def test_duration_atoms(records: list[logging.LogRecord]) -> None:
    def slow(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        time.sleep(0.05)
        return [b"x"]

    serve(AccessLog("tests.access", format="{T} {M} {D} {L}"), slow)
    seconds, millis, micros, decimal = records[0].getMessage().split()
    assert seconds == "0" and 50 <= int(millis) < 5000
    assert int(micros) // 1000 == int(millis)
    assert decimal.startswith("0.") and len(decimal) == 8


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{z}", "format: unknown placeholder '{z}'"),
        ("{}", "format: unknown placeholder '{}'"),
        ("{User-Agent}", "format: unknown placeholder '{User-Agent}'"),
        ("{h", "format: unbalanced brace"),
        ("h}", "format: unbalanced brace"),
    ],
)
def test_bad_formats_are_refused_at_construction(template: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("{", r"\{")):
        AccessLog(format=template)


def test_local_time_with_a_half_hour_zone(
    records: list[logging.LogRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "IST-5:30")
    time.tzset()
    try:
        serve(AccessLog("tests.access", format="{t}"), hello)
        serve(AccessLog("tests.access", format="json"), hello)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert records[0].getMessage() == "[15/Nov/2023:03:43:20 +0530]"
    assert json.loads(records[1].getMessage())["time"] == "2023-11-15T03:43:20+05:30"


# -- bytes and statuses ----------------------------------------------------------------


def generator_app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
    def body() -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"abc"
        yield b""
        yield b"defg"

    return body()


def write_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written ")
    return [b"and iterated"]


def file_app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
    path = Path(__file__)
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(path.stat().st_size))],
    )
    return environ["wsgi.file_wrapper"](path.open("rb"))


def endless_app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
    def body() -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        while True:
            yield b"0123456789"

    return body()


@pytest.mark.parametrize(
    ("app", "method", "extra", "expected"),
    [
        (hello, "GET", {}, 5),
        (generator_app, "GET", {}, 7),
        (write_app, "GET", {}, 20),
        (file_app, "GET", {}, Path(__file__).stat().st_size),
        (hello, "HEAD", {}, 0),
        (endless_app, "GET", {"abandon_after": 3}, 30),  # the client went away
    ],
)
def test_bytes_are_what_went_out(
    records: list[logging.LogRecord],
    app: WSGIApplication,
    method: str,
    extra: dict[str, Any],
    expected: int,
) -> None:
    outcome = serve(AccessLog("tests.access", format="{B}"), app, method, **extra)
    assert outcome.error is None
    assert [r.getMessage() for r in records] == [str(expected)]


def test_file_wrapper_is_handed_on_as_is(records: list[logging.LogRecord]) -> None:
    outcome = serve(AccessLog("tests.access"), file_app)
    assert type(outcome.result).__name__ == "FileWrapper"


def test_status_after_an_exc_info_replacement(records: list[logging.LogRecord]) -> None:
    app = conformance.apps.exc_info_replace_app(conformance.Probe())
    serve(AccessLog("tests.access", format="{s} {E}"), app)
    assert records[0].getMessage() == "500 -"


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("raise-before-start", "500"),
        ("raise-after-start", "500"),
        ("raise-after-first-chunk", "200"),
    ],
)
def test_an_app_that_raises_is_logged_and_the_error_propagates(
    records: list[logging.LogRecord], style: str, expected: str
) -> None:
    (row,) = [s for s in conformance.STYLES if s.id == style]
    outcome = serve(
        AccessLog("tests.access", format="common"), row.make_app(conformance.Probe())
    )
    assert isinstance(outcome.error, AppError)
    message = records[0].getMessage()
    assert f'" {expected} ' in message and message.endswith("[error: AppError]")
    assert records[0].__dict__["error.type"] == "AppError"


def test_outside_error_catcher_it_logs_the_500_and_sees_the_request_id(
    records: list[logging.LogRecord],
) -> None:
    def boom(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        raise ValueError("boom")

    app = compose(boom, AccessLog("tests.access", format="{s} {E}"), ErrorCatcher())
    outcome = serve(lambda inner: inner, app)
    assert outcome.status.startswith("500") and outcome.error is None
    assert records[0].getMessage() == "500 -"
    assert outcome.environ["middleware.request_id"].encode() in outcome.body


# -- escaping --------------------------------------------------------------------------


def test_a_request_cannot_forge_log_lines(records: list[logging.LogRecord]) -> None:
    serve(
        AccessLog("tests.access", utc=True),
        hello,
        path='/a\r\n127.0.0.1 - - "GET /forged"',
        HTTP_USER_AGENT='evil"agent\n\x1b[31m',
        HTTP_REFERER="x\\y\x00z\xe9",
    )
    (message,) = [r.getMessage() for r in records]
    assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert message.count('"') == 6  # the format's own quotes, nothing more
    assert "/a%0D%0A127.0.0.1%20-%20-%20%22GET%20/forged%22" in message
    assert '"evil\\x22agent\\x0a\\x1b[31m"' in message
    assert '"x\\x5cy\\x00z\\xe9"' in message


def test_escape() -> None:
    assert escape("plain /path?q=1") == "plain /path?q=1"
    assert escape('a"b\\c\td\x7f\u2028') == "a\\x22b\\x5cc\\x09d\\x7f\\u2028"


def test_raw_uri_is_used_and_escaped(records: list[logging.LogRecord]) -> None:
    serve(AccessLog("tests.access", format="{r}"), hello, RAW_URI='/raw path"\n')
    assert records[0].getMessage() == "GET /raw path\\x22\\x0a HTTP/1.1"


# -- trust -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hops", "forwarded", "client"),
    [
        (None, "198.51.100.1", "203.0.113.9"),  # no ProxyHeaders: REMOTE_ADDR
        (1, "198.51.100.1", "198.51.100.1"),
        (1, "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # a spoofed left-most hop
        (2, "6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
        (2, "198.51.100.1", "203.0.113.9"),  # fewer hops than proxies
        (1, None, "203.0.113.9"),
    ],
)
def test_the_client_is_remote_addr_as_proxy_headers_set_it(
    records: list[logging.LogRecord],
    hops: int | None,
    forwarded: str | None,
    client: str,
) -> None:
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    log = AccessLog("tests.access", format="{h}")
    if hops is None:
        serve(log, hello, **extra)
    else:
        serve(lambda app: compose(app, ProxyHeaders(hops), log), hello, **extra)
    assert records[0].getMessage() == client


def test_user_comes_from_remote_user_never_the_authorization_header(
    records: list[logging.LogRecord],
) -> None:
    serve(
        AccessLog("tests.access", format="{u}"),
        hello,
        HTTP_AUTHORIZATION="Basic YWRtaW46eA==",
    )
    assert records[0].getMessage() == "-"


# -- request ids -----------------------------------------------------------------------


def test_request_id_is_generated_shared_and_echoed(
    records: list[logging.LogRecord],
) -> None:
    seen: dict[str, Any] = {}

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        seen["environ"] = environ["middleware.request_id"]
        seen["var"] = request_id_var.get()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    first = serve(AccessLog("tests.access", format="json"), app)
    request_id = first.header("X-Request-ID")
    assert request_id == seen["environ"] == seen["var"]
    assert json.loads(records[0].getMessage())["request_id"] == request_id
    assert request_id_var.get() is None  # reset when the response closed
    second = serve(AccessLog("tests.access"), app, HTTP_X_REQUEST_ID="abc")
    assert second.header("X-Request-ID") not in (request_id, "abc")  # not trusted


@pytest.mark.parametrize(
    ("inbound", "kept"),
    [
        ("4bf92f3577b34da6a3ce929d0e0e4736", True),
        ("req-1:edge.a/B+c=", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("bad id", False),
        ('"><script>', False),
        ("line\nbreak", False),
        ("", False),
    ],
)
def test_trusted_inbound_request_id_is_checked(
    records: list[logging.LogRecord], inbound: str, kept: bool
) -> None:
    layer = AccessLog(
        "tests.access", trust_request_id=True, request_id_header="X-Trace"
    )
    outcome = serve(layer, hello, HTTP_X_TRACE=inbound)
    echoed = outcome.header("X-Trace")
    assert (echoed == inbound) is kept
    assert echoed is not None and len(echoed) >= 1


def test_request_id_filter_for_the_apps_own_logging(
    records: list[logging.LogRecord], caplog: pytest.LogCaptureFixture
) -> None:
    app_log = logging.getLogger("tests.app")
    request_filter = RequestIdFilter()
    caplog.handler.addFilter(request_filter)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        app_log.warning("inside")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    try:
        outcome = serve(AccessLog("tests.access"), app)
        app_log.warning("outside")
        app_log.warning("its own", extra={"request_id": "kept"})
    finally:
        caplog.handler.removeFilter(request_filter)
    inside, outside, own = [r for r in caplog.records if r.name == "tests.app"]
    assert own.__dict__["request_id"] == "kept"
    assert inside.__dict__["request_id"] == outcome.header("X-Request-ID")
    assert outside.__dict__["request_id"] == "-"


# -- configuration and logging hygiene -------------------------------------------------


def test_never_touches_logging_configuration(records: list[logging.LogRecord]) -> None:
    logger = logging.getLogger("tests.access")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    for _ in range(3):
        serve(AccessLog("tests.access"), hello)
    assert (logger.handlers, logger.level, logger.propagate) == (
        handlers,
        level,
        propagate,
    )
    assert logging.getLogger("middleware.access").handlers == []


def test_disabled_level_logs_nothing(records: list[logging.LogRecord]) -> None:
    serve(AccessLog("tests.access", level="DEBUG"), hello)
    serve(AccessLog(logging.getLogger("tests.access"), level=logging.WARNING), hello)
    assert [r.levelno for r in records] == [logging.WARNING]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"logger": 3}, "logger: expected a name or a Logger, got 3"),
        ({"format": None}, "format: expected a string, got None"),
        (
            {"level": "LOUD"},
            "level: expected a logging level such as 'INFO', got 'LOUD'",
        ),
        ({"level": True}, "level: expected a logging level"),
        ({"request_id_header": "X Bad"}, "request_id_header: expected a header name"),
        ({"trust_request_id": "yes"}, "trust_request_id: expected True or False"),
        ({"utc": 1}, "utc: expected True or False, got 1"),
    ],
)
def test_bad_configuration_names_the_option(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        AccessLog(**kwargs)


# -- nothing configured: standard error (issue 22, item 5) ----------------------------

UNCONFIGURED = """
import sys
from middleware import AccessLog
from middleware.testing import make_environ, run

def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hi"]

fallback = sys.argv[1] == "on"
app = AccessLog(format="{m} {U} {s}", stderr_fallback=fallback)(hello)
run(app, make_environ("GET", "/seen"))
if sys.argv[2] == "configure":
    import logging
    logging.basicConfig(level=logging.INFO, format="logged: %(message)s")
    import time
    time.sleep(1.1)  # the fallback looks once a second
    run(app, make_environ("GET", "/after"))
"""


@pytest.mark.parametrize(
    ("fallback", "configure", "expected"),
    [
        ("on", "no", ["GET /seen 200"]),  # before: nothing at all
        ("off", "no", []),
        ("on", "configure", ["GET /seen 200", "logged: GET /after 200"]),
    ],
)
def test_with_no_logging_configured_lines_go_to_stderr(
    fallback: str, configure: str, expected: list[str]
) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", UNCONFIGURED, fallback, configure],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == expected
