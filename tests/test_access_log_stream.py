"""AccessLog's ``stream`` option (issue 23): lines written straight to standard
output, standard error or a text stream, instead of through ``logging``."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import threading
from typing import Any

import pytest

from middleware import AccessLog, ErrorCatcher, compose
from middleware import testing as conformance
from middleware.testing import AppError, Served, Style, Subject, make_environ, run
from middleware.wsgi import StartResponse, WSGIEnvironment

from .test_paste import layers, load

KIT_STREAM = io.StringIO()


def check_one_line(style: Style, outcome: Served) -> None:
    """Exactly one JSON line per request on the stream, with the final status."""
    request_id = outcome.environ["middleware.request_id"]
    lines = [json.loads(line) for line in KIT_STREAM.getvalue().splitlines()]
    mine = [line for line in lines if line["request_id"] == request_id]
    assert len(mine) == 1, mine
    if outcome.error is not None and not outcome.headers_sent:
        expected: int | None = 500
    elif outcome.status:
        expected = int(outcome.status[:3])
    else:
        expected = None
    assert mine[0]["http.response.status_code"] == expected
    if not style.bodiless:
        assert mine[0]["bytes"] == len(outcome.body)


test_conformance = conformance.suite(
    Subject(
        "access-log-stream",
        AccessLog(format="json", stream=KIT_STREAM),
        check=check_one_line,
    )
)


def hello(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


class WriteOnly:
    """A stream with ``write`` and no ``flush``."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def write(self, text: str) -> int:
        self.written.append(text)
        return len(text)


class Broken(io.StringIO):
    """A stream whose writes fail, as a closed pipe does."""

    def write(self, text: str) -> int:
        raise BrokenPipeError("the reader went away")


@pytest.fixture
def silent_logger() -> Any:
    """The default logger with a handler that keeps what it gets: it must get
    nothing while a stream is set."""
    kept: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record)

    logger = logging.getLogger("middleware.access")
    handler = Keep()
    logger.addHandler(handler)
    try:
        yield kept
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("name", ["stdout", "stderr"])
def test_named_streams_are_looked_up_at_each_line(
    name: str, capsys: pytest.CaptureFixture[str], silent_logger: Any
) -> None:
    app = AccessLog(format="{m} {U} {s} {B}", stream=name)(hello)
    run(app, make_environ("GET", "/seen"))
    out, err = capsys.readouterr()
    assert (out if name == "stdout" else err) == "GET /seen 200 5\n"
    assert (err if name == "stdout" else out) == ""
    assert silent_logger == []  # the logger was not used


def test_a_text_stream_gets_one_line_per_request() -> None:
    stream = io.StringIO()
    app = AccessLog(stream=stream)(hello)
    for path in ("/a", "/b"):
        run(app, make_environ("GET", path))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r'- - - \[[^]]+\] "GET /a HTTP/1\.0" 200 5 "-" "-"', lines[0])


def test_a_stream_without_flush_is_written_to() -> None:
    stream = WriteOnly()
    run(AccessLog(format="{s}", stream=stream)(hello))
    assert stream.written == ["200\n"]


def test_json_lines_carry_the_fields_in_the_line() -> None:
    stream = io.StringIO()
    served = run(AccessLog(format="json", stream=stream)(hello))
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["request_id"] == served.environ["middleware.request_id"]
    assert line["http.response.status_code"] == 200 and line["bytes"] == 5


def test_an_error_is_in_the_line() -> None:
    def boom(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        raise AppError("boom")

    stream = io.StringIO()
    run(compose(boom, AccessLog(format="{s} {E}", stream=stream), ErrorCatcher()))
    assert stream.getvalue() == "500 -\n"  # ErrorCatcher answered it
    stream = io.StringIO()
    served = run(AccessLog(format="{s} {E}", stream=stream)(boom))
    assert isinstance(served.error, AppError)
    assert stream.getvalue() == "500 AppError\n"


def test_a_failing_stream_is_logged_once_a_minute_and_the_response_is_not_harmed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = AccessLog(stream=Broken())(hello)
    with caplog.at_level(logging.WARNING, logger="middleware.access_log"):
        served = [run(app) for _ in range(3)]
    assert all(s.error is None and s.body == b"hello" for s in served)
    warnings = [r for r in caplog.records if r.name == "middleware.access_log"]
    assert len(warnings) == 1  # not one per request
    assert "cannot be written" in caplog.text and "BrokenPipeError" in caplog.text


def test_a_named_stream_that_is_none_drops_the_line(
    monkeypatch: pytest.MonkeyPatch, silent_logger: Any
) -> None:
    monkeypatch.setattr(sys, "stdout", None)  # pythonw, some daemons
    served = run(AccessLog(stream="stdout")(hello))
    assert served.error is None and served.body == b"hello"
    assert silent_logger == []  # not sent to the logger instead


def test_lines_from_many_threads_and_two_layers_never_interleave() -> None:
    stream = io.StringIO()
    apps = [AccessLog(format="{U} {s} {B}", stream=stream)(hello) for _ in range(2)]
    barrier = threading.Barrier(8, timeout=10)

    def client(number: int) -> None:
        barrier.wait()
        for request in range(200):
            run(apps[request % 2], make_environ("GET", f"/t{number}/{request}"))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1600
    assert all(re.fullmatch(r"/t\d/\d+ 200 5", line) for line in lines)
    assert len(set(lines)) == 1600


#: Values the option refuses at construction, each named in the message.
REFUSED_STREAMS: dict[str, Any] = {
    "a file name": "access.log",
    "an int": 3,
    "an object without write": object(),
    "bytes": b"stdout",
    "write that is not callable": type("W", (), {"write": "no"})(),
    "a binary stream": io.BytesIO(),
    "a raw file": io.FileIO(0, closefd=False),
}


@pytest.mark.parametrize(
    "value", list(REFUSED_STREAMS.values()), ids=list(REFUSED_STREAMS)
)
def test_bad_streams_are_refused_at_construction(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^stream: expected 'stdout', 'stderr' or"):
        AccessLog(stream=value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("stdout", "stdout"), (" STDERR ", "stderr"), ("none", None), ("", None)],
)
def test_the_stream_from_an_ini_file(tmp_path: Any, text: str, expected: Any) -> None:
    app = load(
        tmp_path,
        f"""
        [filter:access_log]
        use = egg:wsgi-middleware-toolkit#access_log
        stream = {text}
        """,
    )
    [access_log] = layers(app)
    assert access_log.stream == expected


def test_a_path_in_an_ini_file_is_refused_naming_the_option(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="stream.*'/var/log/Access.log'"):
        load(
            tmp_path,
            """
            [filter:access_log]
            use = egg:wsgi-middleware-toolkit#access_log
            stream = /var/log/Access.log
            """,
        )
