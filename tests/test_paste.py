"""PasteDeploy: the filter factories and their option conversion, the
``python -m middleware serve`` command, and the demo pipeline served over real HTTP
by ``python -m middleware serve`` and by ``gunicorn --paste``."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from paste.deploy import loadapp

from middleware import (
    AccessLog,
    BasicAuth,
    Compress,
    ErrorCatcher,
    Gzip,
    ProxyHeaders,
    RateLimit,
    SecurityHeaders,
    Session,
    StaticFiles,
)
from middleware.options import Seconds
from middleware.paste import FACTORIES
from middleware.proxy import Layer
from middleware.session import MemoryStore, SQLiteStore
from middleware.session.codec import Codec
from middleware.wsgi import StartResponse, WSGIEnvironment

from .servers import free_port, running_command
from .visit import CREDENTIALS, ROOT, HTTPClient, scripted_visit, visits

SECRET = "s" * 40
HTPASSWD = ROOT / "examples" / "demo.htpasswd"


def make_hello(global_conf: dict[str, str], **settings: str) -> Any:
    def hello(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    return hello


def load(tmp_path: Path, filters: str, default: str = "") -> Any:
    """The app of an ini with *filters* (``[filter:NAME]`` sections, each used in
    the pipeline in order) around a hello app."""
    filters = textwrap.dedent(filters)
    names = re.findall(r"^\[filter:(\w+)\]", filters, re.MULTILINE)
    ini = tmp_path / "test.ini"
    ini.write_text(
        textwrap.dedent(default)
        + f"\n[pipeline:main]\npipeline = {' '.join(names)} hello\n\n"
        "[app:hello]\nuse = call:tests.test_paste:make_hello\n\n" + filters
    )
    return loadapp(f"config:{ini}")


def layers(app: Any) -> Iterator[Any]:
    while isinstance(app, Layer):
        yield app.middleware
        app = app.app


def test_every_factory_by_entry_point(tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    app = load(
        tmp_path,
        f"""
        [filter:proxy_headers]
        use = egg:wsgi-middleware-toolkit#proxy_headers
        hops = 2
        trusted_from = 127.0.0.1 10.0.0.0/8
        [filter:security_headers]
        use = egg:wsgi-middleware-toolkit#security_headers
        hsts_seconds = 1h
        content_security_policy = default-src 'self'; script-src 'self' {{nonce}}
        csp_nonce = true
        redirect_exempt = /healthz /status
        [filter:rate_limit]
        use = egg:wsgi-middleware-toolkit#rate_limit
        limits = 10/second; 1000/hour
        key = user
        strategy = fixed-window
        exempt = /healthz
        on_store_error = allow
        [filter:access_log]
        use = egg:wsgi-middleware-toolkit#access_log
        [filter:errors]
        use = egg:wsgi-middleware-toolkit#errors
        [filter:compress]
        use = egg:wsgi-middleware-toolkit#compress
        [filter:gzip]
        use = egg:wsgi-middleware-toolkit#gzip
        [filter:basic_auth]
        use = egg:wsgi-middleware-toolkit#basic_auth
        htpasswd = {HTPASSWD}
        throttle_store = memory
        on_store_error = allow
        [filter:session]
        use = egg:wsgi-middleware-toolkit#session
        secret = {SECRET}
        [filter:static]
        use = egg:wsgi-middleware-toolkit#static
        directory = public
        """,
    )
    kinds = [type(m) for m in layers(app)]
    assert kinds == [
        ProxyHeaders,
        SecurityHeaders,
        RateLimit,
        AccessLog,
        ErrorCatcher,
        Compress,
        Gzip,
        BasicAuth,
        Session,
        StaticFiles,
    ]
    proxy = next(layers(app))
    assert (proxy.hops, proxy.trusted_from) == (2, ("127.0.0.1", "10.0.0.0/8"))
    security = list(layers(app))[1]
    assert security.hsts_seconds == 3600 and security.csp_nonce is True
    assert security.redirect_exempt == ("/healthz", "/status")
    assert (
        security.content_security_policy
        == "default-src 'self'; script-src 'self' {nonce}"
    )
    limit = list(layers(app))[2]
    assert (limit.limits, limit.key, limit.strategy) == (
        "10/second; 1000/hour",
        "user",
        "fixed-window",
    )
    assert (limit.exempt, limit.on_store_error) == (("/healthz",), "allow")
    auth = next(m for m in layers(app) if isinstance(m, BasicAuth))
    assert (auth.throttle_store, auth.on_store_error) == ("memory", "allow")
    assert set(FACTORIES) == {
        "proxy_headers",
        "rate_limit",
        "security_headers",
        "access_log",
        "errors",
        "compress",
        "gzip",
        "basic_auth",
        "session",
        "static",
    }


def test_call_form_and_conversions(tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    app = load(
        tmp_path,
        f"""
        [filter:gzip]
        use = call:middleware.paste:gzip
        level = 9
        min_size = 100
        types = text/* , application/json
            image/svg+xml
        event_stream = yes
        [filter:compress]
        use = call:middleware.paste:compress
        encodings = gzip br
        level = gzip:5 br:3
        [filter:session]
        use = call:middleware.paste:session
        secret = {SECRET}
        store = sqlite:db.sqlite3
        max_age = 2h
        idle_timeout = 15m
        reissue_after = none
        secure = true
        samesite = Strict
        domain = none
        [filter:basic_auth]
        use = call:middleware.paste:basic_auth
        htpasswd = {HTPASSWD}
        exempt = /healthz, /static
        cache_ttl = 30s
        max_failures = none
        failure_window = 1w
        [filter:static]
        use = call:middleware.paste:static
        directory = public
        max_age = 1d
        immutable = none
        index = none
        dotfiles = ignore
        content_types =
            .gltf model/gltf+json
            .x text/x-x
        [filter:access_log]
        use = call:middleware.paste:access_log
        format = common
        level = DEBUG
        utc = on
        [filter:errors]
        use = call:middleware.paste:errors
        debug = off
        expected = builtins.KeyError builtins:LookupError
        """,
    )
    found = {type(m).__name__: m for m in layers(app)}
    gzip = found["Gzip"]
    assert gzip.level == {"gzip": 9} and gzip.min_size == 100
    assert gzip.types == ("text/*", "application/json", "image/svg+xml")
    assert gzip.event_stream is True
    assert found["Compress"].level == {"gzip": 5, "br": 3}
    session = found["Session"]
    assert isinstance(session.store, SQLiteStore)
    assert session.store.path == tmp_path / "db.sqlite3"
    assert (session.max_age, session.idle_timeout) == (7200, 900)
    assert session.reissue_after is None and session.domain is None
    assert session.secure is True and session.samesite == "Strict"
    auth = found["BasicAuth"]
    assert auth.exempt == ("/healthz", "/static")
    assert (auth.cache_ttl, auth.max_failures, auth.failure_window) == (
        30,
        None,
        604800,
    )
    static = found["StaticFiles"]
    assert static.directory == str(tmp_path / "public")
    assert (static.max_age, static.immutable, static.index) == (86400, None, None)
    assert static._types[".gltf"] == "model/gltf+json"
    assert found["AccessLog"].utc is True
    assert found["ErrorCatcher"].expected == (KeyError, LookupError)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1.5h", 5400),
     ("14d", 1209600), ("1w", 604800), (" 3 D ", 259200)],
)  # fmt: skip
def test_durations(value: str, seconds: int) -> None:
    assert Seconds().parse(value, Path()) == seconds


# (section body, the message's pattern)
BAD = [
    ("use = call:middleware.paste:gzip\nlevel = high",
     r"\[filter:bad\] level = 'high': expected a whole number"),
    ("use = call:middleware.paste:gzip\nlevel = 12",
     r"\[filter:bad\] level: .*12"),
    ("use = call:middleware.paste:gzip\nlevle = 5",
     r"\[filter:bad\] unknown option levle = '5'; gzip takes: event_stream, level"),
    ("use = call:middleware.paste:gzip\nevent_stream = maybe",
     r"\[filter:bad\] event_stream = 'maybe': expected true or false"),
    ("use = call:middleware.paste:session\nsecret = short",
     r"\[filter:bad\] secret: .*32 bytes"),
    ("use = call:middleware.paste:session\nsecret_env = NOT_SET_ANYWHERE_42",
     r"\[filter:bad\] secret_env = 'NOT_SET_ANYWHERE_42': the environment variable "
     r"NOT_SET_ANYWHERE_42 is not set"),
    (f"use = call:middleware.paste:session\nsecret = {SECRET}\nmax_age = soon",
     r"\[filter:bad\] max_age = 'soon': expected a duration"),
    (f"use = call:middleware.paste:session\nsecret = {SECRET}\nstore = mongodb://x",
     r"\[filter:bad\] store = 'mongodb://x': expected cookie, memory, sqlite"),
    ("use = call:middleware.paste:static\ndirectory = nowhere",
     r"\[filter:bad\] directory: .*nowhere.* is not an existing directory"),
    ("use = call:middleware.paste:static\ndirectory = .\ndotfiles = hide",
     r"\[filter:bad\] dotfiles: expected 'deny', 'ignore' or 'allow', got 'hide'"),
    ("use = call:middleware.paste:basic_auth\ncheck = nowhere.module:check",
     r"\[filter:bad\] check = 'nowhere.module:check': cannot import it"),
    ("use = call:middleware.paste:errors\nexpected = KeyError",
     r"\[filter:bad\] expected = 'KeyError': expected a dotted name"),
    ("use = call:middleware.paste:compress\nlevel = gzip:x",
     r"\[filter:bad\] level = 'gzip:x': expected a whole number"),
    ("use = call:middleware.paste:static\ndirectory = .\ncontent_types = .x",
     r"\[filter:bad\] content_types = '.x': expected lines of 'key value'"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "pattern"), BAD)
def test_bad_values_name_the_section_key_and_value(
    tmp_path: Path, body: str, pattern: str
) -> None:
    with pytest.raises(ValueError, match=pattern):
        load(tmp_path, "[filter:bad]\n" + body + "\n")


def test_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SESSION_SECRET", SECRET)
    monkeypatch.setenv("TEST_OLD_SECRET", "o" * 40)
    app = load(
        tmp_path,
        """
        [filter:session]
        use = egg:wsgi-middleware-toolkit#session
        secret_env = TEST_SESSION_SECRET
        fallback_secrets_env = TEST_OLD_SECRET
        store = memory
        """,
    )
    session = next(layers(app))
    assert isinstance(session.store, MemoryStore)
    assert session.secret == SECRET.encode()
    assert session.fallback_secrets == (b"o" * 40,)
    assert SECRET not in repr(session)
    with pytest.raises(ValueError, match="secret is given twice; use secret or"):
        load(
            tmp_path,
            f"""
            [filter:session]
            use = egg:wsgi-middleware-toolkit#session
            secret = {SECRET}
            secret_env = TEST_SESSION_SECRET
            """,
        )


def test_a_key_hidden_by_default_is_an_error(tmp_path: Path) -> None:
    # PasteDeploy drops a section's key when [DEFAULT] has it too: level would be
    # silently 6, neither 1 nor 9.
    with pytest.raises(
        ValueError,
        match=r"\[filter:gzip\] level = '1' is hidden by \[DEFAULT\] level = '9'",
    ):
        load(
            tmp_path,
            "[filter:gzip]\nuse = egg:wsgi-middleware-toolkit#gzip\nlevel = 1\n",
            default="[DEFAULT]\nlevel = 9\n",
        )
    # A [DEFAULT] key the section does not set is left alone (it is global_conf).
    app = load(
        tmp_path,
        "[filter:gzip]\nuse = egg:wsgi-middleware-toolkit#gzip\n",
        default="[DEFAULT]\ndebug = true\n",
    )
    assert isinstance(next(layers(app)), Gzip)


def test_percent_must_be_doubled(tmp_path: Path) -> None:
    app = load(
        tmp_path,
        """
        [filter:access_log]
        use = egg:wsgi-middleware-toolkit#access_log
        format = %%(REQUEST_METHOD)s took %%(duration_us)s
        """,
    )
    assert next(layers(app)).format == "%(REQUEST_METHOD)s took %(duration_us)s"


# -- python -m middleware serve: errors ----------------------------------------------


def serve_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "middleware", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.ini"], r"error: missing.ini: no such file"),
        (["examples/site.ini", "--app", "nothere"], r"error: .*No section 'nothere'"),
        (["BAD"], r"error: .*\[filter:gzip\] level = 'high': expected a whole number"),
        (["BROKEN"], r"error: .*"),
    ],
)
def test_serve_reports_start_up_problems_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    if args == ["BAD"]:
        bad = tmp_path / "bad.ini"
        bad.write_text(
            "[pipeline:main]\npipeline = gzip hello\n"
            "[app:hello]\nuse = call:tests.test_paste:make_hello\n"
            "[filter:gzip]\nuse = egg:wsgi-middleware-toolkit#gzip\nlevel = high\n"
        )
        args = [str(bad)]
    elif args == ["BROKEN"]:
        broken = tmp_path / "broken.ini"
        broken.write_text("[app:main]\nuse = call:no_such_module:app\n")
        args = [str(broken)]
    result = serve_command(*args)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.match(message, lines[0]), lines[0]
    assert "Traceback" not in result.stderr


# -- the demo pipeline over real HTTP ------------------------------------------------

ACCESS = re.compile(r'\[middleware\.access\] .*"GET (\S+) HTTP/1\.1" (\d{3}) (\d+|-)')


def access_lines(log: str) -> Counter[tuple[str, int, int]]:
    return Counter(
        (path, int(status), 0 if size == "-" else int(size))
        for path, status, size in ACCESS.findall(log)
    )


SERVE = [sys.executable, "-m", "middleware", "serve", "examples/site.ini", "--port"]
# The README's command, from the repository, without --chdir (before, the demo
# crashed in a loop: No module named 'site_app').
GUNICORN = [
    sys.executable, "-m", "gunicorn", "--paste", "examples/site.ini",
    "-w", "2", "--graceful-timeout", "2", "-b",
]  # fmt: skip


# What examples/site.ini committed as its session secret until the demo read it
# from SESSION_SECRET.
COMMITTED_DEMO_SECRET = b"demo-only-secret-do-not-use-in-production-0123456789"


def test_the_demo_refuses_to_start_without_its_secret_and_says_how(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SESSION_SECRET"}
    done = subprocess.run(
        [sys.executable, "-m", "middleware", "serve", "examples/site.ini"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode != 0
    assert "SESSION_SECRET is not set" in done.stderr
    assert "secrets.token_hex(32)" in done.stderr


@pytest.mark.server
@pytest.mark.parametrize("kind", ["serve", "gunicorn"])
def test_the_demo_pipeline_over_real_http(kind: str, tmp_path: Path) -> None:
    port = free_port()
    command = (
        [*SERVE, str(port)] if kind == "serve" else [*GUNICORN, f"127.0.0.1:{port}"]
    )
    log = tmp_path / f"{kind}.log"
    # The demo reads its secret from the environment, as the README sets it.
    env = {**os.environ, "SESSION_SECRET": secrets.token_hex(32)}
    with running_command(command, port, log, env=env) as proc:
        client = HTTPClient(port)
        made = scripted_visit(client)
        assert proc.poll() is None  # still serving after /boom
        health = client.get("/healthz", {})  # exempt: no credentials needed
        assert (health.status, health.body) == (200, b"ok\n")
        made.append(("/healthz", 200, 3))
        # A cookie forged with the secret the demo once committed is refused:
        # a fresh session, counting from 1 (it was accepted: 100).
        now = int(time.time())
        client.cookies["demo_session"] = Codec(
            COMMITTED_DEMO_SECRET, (), "middleware.session.cookie"
        ).dumps({"c": now, "t": now, "d": {"visits": 99}})
        forged = client.get("/", CREDENTIALS)
        assert forged.status == 200 and visits(forged) == 1
        made.append(("/", 200, len(forged.body)))
    text = log.read_text()
    # One access line per request, with the status and the bytes sent.
    assert access_lines(text) == Counter(made), text
    assert "RuntimeError: boom" in text  # the traceback is logged
    if kind == "serve":
        assert text.rstrip().endswith("stopped")  # SIGTERM stops it cleanly
        # It says where it listens and what it built, outermost first.
        assert f"serving http://127.0.0.1:{port}, the stack outermost first:" in text
        assert "1. ProxyHeaders(hops=1" in text and "2. SecurityHeaders(" in text
