"""BasicAuth: the conformance kit, hash formats against Apache's htpasswd, malformed
headers, the cache, throttling, reloads, exempt paths and REMOTE_USER."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from webob import Request

from middleware import ProxyHeaders, compose
from middleware import testing as conformance
from middleware.auth import BasicAuth, read_htpasswd
from middleware.auth import middleware as auth_module
from middleware.auth.passwords import UnsupportedHash, hash_kind, make_bcrypt, verify
from middleware.auth.throttle import Failures
from middleware.testing import Served, Style, Subject
from middleware.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

FIXTURE = Path(__file__).parent / "fixtures" / "apache.htpasswd"
# The passwords of the fixture's users (made with Apache's htpasswd).
PASSWORDS = {
    "bcrypt": "bcrypt-pässwörd",
    "apr1": "apr1-pässwörd",
    "sha256": "sha256-pässwörd",
    "sha512": "sha512-pässwörd",
    "sha256r": "sha256r-pässwörd",
    "sha1": "sha1-pässwörd",
    "ascii": "plain ascii",
    "long": "x" * 72,
}
SHA1_ALICE = "{SHA}" + base64.b64encode(hashlib.sha1(b"wonderland").digest()).decode()


def basic(user: str | bytes, password: str | bytes, encoding: str = "utf-8") -> str:
    if isinstance(user, str):
        user = user.encode(encoding)
    if isinstance(password, str):
        password = password.encode(encoding)
    return "Basic " + base64.b64encode(user + b":" + password).decode()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    now = [1000.0]
    monkeypatch.setattr(auth_module, "clock", lambda: now[0])

    def move(seconds: float) -> None:
        now[0] += seconds

    return move


def whoami(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    body = json.dumps(
        {"user": environ.get("REMOTE_USER"), "type": environ.get("AUTH_TYPE")}
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def get(app: WSGIApplication, path: str = "/", **environ: Any) -> Any:
    request = Request.blank(path)
    request.environ.setdefault("REMOTE_ADDR", "192.0.2.1")
    request.environ.update(environ)
    return request.get_response(app)


# -- the conformance kit -----------------------------------------------------------


def check_user(style: Style, outcome: Served) -> None:
    assert outcome.environ["REMOTE_USER"] == "alice"
    assert outcome.environ["AUTH_TYPE"] == "Basic"


test_conformance = conformance.suite(
    Subject(
        "basic-auth",
        BasicAuth(users={"alice": SHA1_ALICE}),
        environ={"HTTP_AUTHORIZATION": basic("alice", "wonderland")},
        check=check_user,
    ),
    Subject("basic-auth-exempt", BasicAuth(users={"a": SHA1_ALICE}, exempt=["/"])),
)


# -- hash formats, against entries Apache's htpasswd made ------------------------------


@pytest.mark.parametrize("user", sorted(PASSWORDS))
def test_apache_htpasswd_entries_verify(user: str) -> None:
    stored = read_htpasswd(FIXTURE)[user]
    password = PASSWORDS[user].encode()
    assert verify(password, stored)
    assert not verify(password + b"!", stored)
    assert not verify(password[:-1], stored)


def test_live_apache_htpasswd_agrees(tmp_path: Path) -> None:
    """Every format made now by the installed htpasswd, checked both ways: its
    hashes verify here, and our bcrypt entries verify with ``htpasswd -v``."""
    binary = shutil.which("htpasswd")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "htpasswd is not installed (CI=true): apt-get install apache2-utils"
            )
        pytest.skip("htpasswd is not installed (apt-get install apache2-utils)")
    password = "ünïcode pass"
    for flag in ("-B", "-m", "-2", "-5", "-s"):
        line = subprocess.run(
            [binary, "-nb", flag, "u", password],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        stored = line.split(":", 1)[1]
        assert verify(password.encode(), stored), (flag, stored)
        assert not verify(b"other", stored)
    path = tmp_path / "ours.htpasswd"
    path.write_text(f"u:{make_bcrypt(password.encode(), 4)}\n")
    subprocess.run(
        [binary, "-vb", str(path), "u", password], check=True, capture_output=True
    )


UNSUPPORTED = [
    ("skAtMVHnAVY2k", "DES crypt is not supported"),
    ("$2y$05$short", "a malformed bcrypt hash"),
    ("$apr1$salt$tooshort", r"a malformed \$apr1\$ hash"),
    ("$5$salt$short", "a malformed SHA-crypt hash"),
    ("$6$salt$" + "a" * 43, "a malformed SHA-crypt hash"),
    ("{SHA}nope", "a malformed {SHA} hash"),
    ("$1$md5crypt$abcdefghijklmnopqrstuv", "an unsupported hash format"),
    ("plaintext", "plain-text passwords need allow_plaintext=True"),
]


@pytest.mark.parametrize(("stored", "message"), UNSUPPORTED)
def test_unsupported_hashes(stored: str, message: str) -> None:
    with pytest.raises(UnsupportedHash, match=message):
        hash_kind(stored)


def test_plaintext_only_when_allowed() -> None:
    assert hash_kind("secret", allow_plaintext=True) == "plaintext"
    assert verify(b"secret", "secret", allow_plaintext=True)
    assert not verify(b"secreT", "secret", allow_plaintext=True)
    app = BasicAuth(users={"a": "secret"}, allow_plaintext=True)(whoami)
    assert get(app, HTTP_AUTHORIZATION=basic("a", "secret")).status_int == 200
    with pytest.raises(ValueError, match=r"users\['a'\]: not a recognised hash"):
        BasicAuth(users={"a": "secret"})


# -- the whole exchange ----------------------------------------------------------------


@pytest.fixture
def fixture_app() -> WSGIApplication:
    return BasicAuth(htpasswd=FIXTURE, realm='Ops "north" \\ lab')(whoami)


def test_no_credentials_get_a_challenge(fixture_app: WSGIApplication) -> None:
    response = get(fixture_app)
    assert response.status_int == 401
    assert response.headers["WWW-Authenticate"] == (
        'Basic realm="Ops \\"north\\" \\\\ lab", charset="UTF-8"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert response.content_type == "text/html"
    assert b"401 Unauthorized" in response.body


def test_a_401_answers_json_by_accept(fixture_app: WSGIApplication) -> None:
    response = get(fixture_app, HTTP_ACCEPT="application/json")
    assert response.json == {"error": "Unauthorized", "status": 401}
    assert get(fixture_app, REQUEST_METHOD="HEAD").body == b""


@pytest.mark.parametrize("user", sorted(PASSWORDS))
def test_every_format_logs_in(fixture_app: WSGIApplication, user: str) -> None:
    response = get(fixture_app, HTTP_AUTHORIZATION=basic(user, PASSWORDS[user]))
    assert response.status_int == 200
    assert response.json == {"user": user, "type": "Basic"}


def test_latin1_credentials_are_accepted(fixture_app: WSGIApplication) -> None:
    header = basic("apr1", PASSWORDS["apr1"], encoding="latin-1")
    assert get(fixture_app, HTTP_AUTHORIZATION=header).json["user"] == "apr1"


MALFORMED = [
    ("no-scheme", base64.b64encode(b"apr1:x").decode()),
    ("other-scheme", "Bearer " + base64.b64encode(b"apr1:x").decode()),
    ("scheme-only", "Basic"),
    ("bad-base64", "Basic !!!not-base64!!!"),
    ("bad-padding", "Basic YXByMTp4e"),
    ("no-colon", "Basic " + base64.b64encode(b"apr1").decode()),
    ("empty-user", basic("", "x")),
    ("non-utf8", "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()),
    ("non-ascii-header", "Basic \xe4\xf6"),
    ("10kb", "Basic " + base64.b64encode(b"apr1:" + b"x" * 7600).decode()),
    ("100-byte-bcrypt", basic("bcrypt", "p" * 100)),
    ("73-byte-bcrypt", basic("long", "x" * 73)),
    ("wrong-password", basic("sha512", "nope")),
    ("unknown-user", basic("mallory", "x")),
]


@pytest.mark.parametrize(
    "header", [h for _, h in MALFORMED], ids=[n for n, _ in MALFORMED]
)
def test_malformed_or_wrong_credentials_get_401(
    fixture_app: WSGIApplication, header: str
) -> None:
    response = get(fixture_app, HTTP_AUTHORIZATION=header)
    assert response.status_int == 401
    assert "WWW-Authenticate" in response.headers


def test_scheme_is_case_insensitive(fixture_app: WSGIApplication) -> None:
    for scheme in ("basic", "BASIC", "bAsIc"):
        header = scheme + basic("sha1", PASSWORDS["sha1"])[5:]
        assert get(fixture_app, HTTP_AUTHORIZATION=header).status_int == 200


# -- REMOTE_USER is ours only ----------------------------------------------------------


def test_remote_user_is_never_trusted_from_upstream(
    fixture_app: WSGIApplication,
) -> None:
    spoofed = {
        "REMOTE_USER": "admin",
        "AUTH_TYPE": "Negotiate",
        "HTTP_REMOTE_USER": "admin",
    }
    assert get(fixture_app, **spoofed).status_int == 401
    response = get(
        fixture_app, HTTP_AUTHORIZATION=basic("sha1", PASSWORDS["sha1"]), **spoofed
    )
    assert response.json == {"user": "sha1", "type": "Basic"}
    exempt = BasicAuth(htpasswd=FIXTURE, exempt=["/health"])(whoami)
    assert get(exempt, "/health", **spoofed).json == {"user": None, "type": None}


EXEMPT = [
    ("/static", True),
    ("/static/", True),
    ("/static/app.css", True),
    ("/staticadmin", False),
    ("/static-admin/x", False),
    ("/static/../admin", False),
    ("/static/./x", False),
    ("//static/x", False),
    ("/admin/static", False),
    ("/", False),
    ("/healthz", True),
]


@pytest.mark.parametrize(("path", "open_"), EXEMPT)
def test_exempt_paths_match_whole_segments(path: str, open_: bool) -> None:
    app = BasicAuth(htpasswd=FIXTURE, exempt=["/static/", "/healthz"])(whoami)
    assert (get(app, path).status_int == 200) is open_


def test_exempt_honours_script_name() -> None:
    app = BasicAuth(htpasswd=FIXTURE, exempt=["/app/static"])(whoami)
    response = get(app, SCRIPT_NAME="/app", PATH_INFO="/static/x.css")
    assert response.status_int == 200


# -- the cache -------------------------------------------------------------------------


@pytest.fixture
def verify_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = verify

    def counting(password: bytes, stored: str, allow_plaintext: bool = False) -> bool:
        calls.append(stored)
        return real(password, stored, allow_plaintext)

    monkeypatch.setattr(auth_module, "verify", counting)
    return calls


def test_successes_are_cached_until_the_ttl(
    verify_calls: list[str], clock: Callable[[float], None]
) -> None:
    app = BasicAuth(htpasswd=FIXTURE, cache_ttl=60)(whoami)
    header = basic("bcrypt", PASSWORDS["bcrypt"])
    for _ in range(3):
        assert get(app, HTTP_AUTHORIZATION=header).status_int == 200
    assert len(verify_calls) == 1
    clock(61)
    assert get(app, HTTP_AUTHORIZATION=header).status_int == 200
    assert len(verify_calls) == 2
    # Failures are never cached.
    for _ in range(2):
        get(app, HTTP_AUTHORIZATION=basic("bcrypt", "wrong"))
    assert len(verify_calls) == 4


def test_cache_off(verify_calls: list[str]) -> None:
    app = BasicAuth(htpasswd=FIXTURE, cache_ttl=0)(whoami)
    for _ in range(2):
        get(app, HTTP_AUTHORIZATION=basic("sha1", PASSWORDS["sha1"]))
    assert len(verify_calls) == 2


def settle(app: WSGIApplication, clock: Callable[[float], None]) -> None:
    """Let a changed htpasswd file be taken: a look (a request with credentials;
    the file is looked at once a second) sees the new version, and a look at least
    SETTLE later reads it."""
    for _ in range(2):
        clock(2)
        get(app, HTTP_AUTHORIZATION=basic("nobody", "x"))


def test_a_password_change_misses_the_cache(
    tmp_path: Path, clock: Callable[[float], None], verify_calls: list[str]
) -> None:
    path = tmp_path / "users"
    path.write_text(f"bob:{make_bcrypt(b'old', 4)}\n")
    app = BasicAuth(htpasswd=path)(whoami)
    assert get(app, HTTP_AUTHORIZATION=basic("bob", "old")).status_int == 200
    path.write_text(f"bob:{make_bcrypt(b'new', 4)}\n")
    os.utime(path, ns=(1, 1))  # a changed mtime, whatever the file system's resolution
    settle(app, clock)
    assert get(app, HTTP_AUTHORIZATION=basic("bob", "old")).status_int == 401
    assert get(app, HTTP_AUTHORIZATION=basic("bob", "new")).status_int == 200


def test_the_cache_keeps_no_password() -> None:
    middleware = BasicAuth(users={"alice": SHA1_ALICE})
    get(middleware(whoami), HTTP_AUTHORIZATION=basic("alice", "wonderland"))
    assert len(middleware._cache) == 1
    assert all(b"wonderland" not in key for key in middleware._cache)


def test_the_cache_is_bounded() -> None:
    middleware = BasicAuth(check=lambda u, p, e: True, cache_size=3)
    for index in range(10):
        get(middleware(whoami), HTTP_AUTHORIZATION=basic(f"u{index}", "p"))
    assert len(middleware._cache) == 3


def test_unknown_users_cost_the_costliest_hash_check(verify_calls: list[str]) -> None:
    # Checked against the first user's hash, an unknown user took 1.1 ms where a
    # known one took 478 ms in a file of mixed bcrypt costs: the timing told who
    # exists. The fixture's costliest entry is its SHA-512-crypt one (3.5 ms here,
    # against 2.4 ms for its bcrypt cost 5).
    app = BasicAuth(htpasswd=FIXTURE)(whoami)
    assert get(app, HTTP_AUTHORIZATION=basic("mallory", "x")).status_int == 401
    assert verify_calls == [read_htpasswd(FIXTURE)["sha512"]]
    costly = make_bcrypt(b"pw", rounds=6)
    users = {"cheap": SHA1_ALICE, "dear": costly, "mid": read_htpasswd(FIXTURE)["apr1"]}
    verify_calls.clear()
    app = BasicAuth(users=users)(whoami)
    assert get(app, HTTP_AUTHORIZATION=basic("nobody", "x")).status_int == 401
    assert verify_calls == [costly]


def test_check_callable_gets_text_and_is_cached() -> None:
    seen: list[tuple[str, str]] = []

    def check(user: str, password: str, environ: WSGIEnvironment) -> bool:
        seen.append((user, password))
        return password == "sësame"

    app = BasicAuth(check=check)(whoami)
    for _ in range(2):
        assert get(app, HTTP_AUTHORIZATION=basic("ali", "sësame")).status_int == 200
    assert get(app, HTTP_AUTHORIZATION=basic("ali", "no")).status_int == 401
    assert seen == [("ali", "sësame"), ("ali", "no")]


# -- throttling ------------------------------------------------------------------------


def test_failures_are_throttled_per_address(clock: Callable[[float], None]) -> None:
    app = BasicAuth(htpasswd=FIXTURE, max_failures=3, failure_window=60)(whoami)
    good = basic("sha1", PASSWORDS["sha1"])
    for index in range(3):
        assert (
            get(app, HTTP_AUTHORIZATION=basic(f"guess{index}", "x")).status_int == 401
        )
    response = get(app, HTTP_AUTHORIZATION=good)
    assert response.status_int == 429
    assert response.headers["Retry-After"] == "60"
    assert "WWW-Authenticate" not in response.headers
    # Another client is not affected; after the window, this one may try again.
    assert get(app, HTTP_AUTHORIZATION=good, REMOTE_ADDR="192.0.2.2").status_int == 200
    clock(45)
    wrong = basic("sha1", "wrong")
    assert get(app, HTTP_AUTHORIZATION=wrong).headers["Retry-After"] == "15"
    # Verified from the other client, the credentials pass there, not here: a
    # throttled address must not learn a cached password from a 200.
    assert get(app, HTTP_AUTHORIZATION=good).status_int == 429
    assert get(app, HTTP_AUTHORIZATION=good, REMOTE_ADDR="192.0.2.2").status_int == 200
    clock(15)
    assert get(app, HTTP_AUTHORIZATION=wrong).status_int == 401


def test_with_lock_users_failures_are_throttled_per_user_and_a_success_resets(
    clock: Callable[[float], None], verify_calls: list[str]
) -> None:
    app = BasicAuth(
        htpasswd=FIXTURE, max_failures=2, failure_window=60, lock_users=True
    )(whoami)
    for index in range(2):  # from two addresses: the user's counter
        get(
            app,
            HTTP_AUTHORIZATION=basic("sha1", "x"),
            REMOTE_ADDR=f"198.51.100.{index}",
        )
    calls = len(verify_calls)
    response = get(
        app, HTTP_AUTHORIZATION=basic("sha1", "x"), REMOTE_ADDR="203.0.113.9"
    )
    assert response.status_int == 429
    assert len(verify_calls) == calls  # no hash was run
    clock(60)
    good = basic("sha1", PASSWORDS["sha1"])
    assert get(app, HTTP_AUTHORIZATION=basic("sha1", "x")).status_int == 401
    assert (
        get(app, HTTP_AUTHORIZATION=good, REMOTE_ADDR="203.0.113.9").status_int == 200
    )
    # The success cleared the user's count: one more failure is not yet a block.
    assert (
        get(
            app, HTTP_AUTHORIZATION=basic("sha1", "x"), REMOTE_ADDR="203.0.113.8"
        ).status_int
        == 401
    )  # noqa: E501


def test_malformed_headers_count_against_the_address() -> None:
    app = BasicAuth(htpasswd=FIXTURE, max_failures=2)(whoami)
    for _ in range(2):
        assert get(app, HTTP_AUTHORIZATION="Basic !!!").status_int == 401
    assert (
        get(app, HTTP_AUTHORIZATION=basic("sha1", PASSWORDS["sha1"])).status_int == 429
    )
    # A request without credentials (a browser's first) never counts.
    other = {"REMOTE_ADDR": "192.0.2.99"}
    for _ in range(5):
        assert get(app, **other).status_int == 401
    assert (
        get(
            app, HTTP_AUTHORIZATION=basic("sha1", PASSWORDS["sha1"]), **other
        ).status_int
        == 200
    )  # noqa: E501


def test_throttling_behind_proxies_uses_the_forwarded_client() -> None:
    app = compose(whoami, ProxyHeaders(1), BasicAuth(htpasswd=FIXTURE, max_failures=2))
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for _ in range(2):
        get(
            app,
            HTTP_AUTHORIZATION=basic("x", "y"),
            HTTP_X_FORWARDED_FOR="192.0.2.7",
            **proxy,
        )  # noqa: E501
    good = basic("sha1", PASSWORDS["sha1"])
    blocked = get(
        app, HTTP_AUTHORIZATION=good, HTTP_X_FORWARDED_FOR="192.0.2.7", **proxy
    )
    assert blocked.status_int == 429
    other = get(app, HTTP_AUTHORIZATION=good, HTTP_X_FORWARDED_FOR="192.0.2.8", **proxy)
    assert other.status_int == 200


def test_throttling_off() -> None:
    app = BasicAuth(users={"alice": SHA1_ALICE}, max_failures=None)(whoami)
    for _ in range(20):
        assert get(app, HTTP_AUTHORIZATION=basic("alice", "x")).status_int == 401


def test_the_failure_table_is_bounded() -> None:
    failures = Failures(window=60, limit=5)
    for index in range(20):
        failures.add(f"a:{index}", now=float(index))
    assert len(failures.counts) == 5


# -- reloading -------------------------------------------------------------------------


def test_reload_on_change_and_keep_the_last_good_users(
    tmp_path: Path, clock: Callable[[float], None], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "users"
    path.write_text(f"alice:{SHA1_ALICE}\n")
    app = BasicAuth(htpasswd=path)(whoami)
    alice = basic("alice", "wonderland")
    assert get(app, HTTP_AUTHORIZATION=alice).status_int == 200
    path.write_text(f"alice:{SHA1_ALICE}\nbob:{SHA1_ALICE}\n")
    os.utime(path, ns=(2, 2))
    settle(app, clock)
    assert get(app, HTTP_AUTHORIZATION=basic("bob", "wonderland")).status_int == 200
    path.write_text("alice:{SHA}broken\n")
    os.utime(path, ns=(3, 3))
    with caplog.at_level(logging.WARNING, logger="middleware.auth"):
        settle(app, clock)
        assert get(app, HTTP_AUTHORIZATION=alice).status_int == 200
    assert "keeping the last users" in caplog.text and "line 1" in caplog.text
    path.unlink()
    clock(2)
    assert get(app, HTTP_AUTHORIZATION=alice).status_int == 200


def test_htpasswd_file_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("# comment\n\nalice:{SHA}broken\n")
    with pytest.raises(
        ValueError, match=r"users, line 3 \(user 'alice'\): a malformed"
    ):
        BasicAuth(htpasswd=path)
    path.write_text("just-a-name\n")
    with pytest.raises(ValueError, match="line 1: expected 'user:hash'"):
        BasicAuth(htpasswd=path)
    path.write_text("# nobody\n")
    with pytest.raises(ValueError, match="has no users"):
        BasicAuth(htpasswd=path)
    with pytest.raises(ValueError, match="htpasswd: cannot read"):
        BasicAuth(htpasswd=tmp_path / "missing")


def test_first_entry_of_a_user_wins(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text(f"alice:{SHA1_ALICE}\nalice:{{SHA}}{'A' * 27}=\n")
    assert read_htpasswd(path)["alice"] == SHA1_ALICE


# -- configuration ---------------------------------------------------------------------


BAD_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({}, "exactly one is required, got none"),
    ({"users": {"a": SHA1_ALICE}, "check": lambda u, p, e: True}, "got users, check"),
    ({"users": {}}, "users: expected a non-empty mapping"),
    ({"users": {"a:b": SHA1_ALICE}}, "users: bad user name 'a:b'"),
    ({"users": {"a": 42}}, r"users\['a'\]"),
    ({"check": "yes"}, "check: expected a callable"),
    (
        {"users": {"a": SHA1_ALICE}, "realm": "x\r\nSet-Cookie: y"},
        "realm: expected text without control",
    ),  # noqa: E501
    (
        {"users": {"a": SHA1_ALICE}, "exempt": "/static"},
        "exempt: expected a list of paths",
    ),  # noqa: E501
    ({"users": {"a": SHA1_ALICE}, "exempt": ["static"]}, "exempt"),
    (
        {"users": {"a": SHA1_ALICE}, "cache_ttl": -1},
        "cache_ttl: expected a number of seconds",
    ),  # noqa: E501
    ({"users": {"a": SHA1_ALICE}, "failure_window": 0}, "failure_window"),
    (
        {"users": {"a": SHA1_ALICE}, "max_failures": 0},
        "max_failures: expected an int >= 1 or None",
    ),  # noqa: E501
    ({"users": {"a": SHA1_ALICE}, "cache_size": 1.5}, "cache_size"),
    ({"users": {"a": SHA1_ALICE}, "throttle_store": "memcached://x"}, "throttle_store"),
    ({"users": {"a": SHA1_ALICE}, "throttle_store": 5}, "throttle_store: expected"),
    ({"users": {"a": SHA1_ALICE}, "on_store_error": "maybe"}, "on_store_error"),
    ({"users": {"a": SHA1_ALICE}, "allow_plaintext": "yes"}, "allow_plaintext"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BasicAuth(**options)


def test_missing_bcrypt_is_an_error_at_construction(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['bcrypt'] = None\n"
        "from middleware.auth import BasicAuth\n"
        "try:\n"
        f"    BasicAuth(htpasswd={str(FIXTURE)!r})\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'wsgi-middleware-toolkit[bcrypt]'" in out.stdout, out.stderr


# -- the command line ------------------------------------------------------------------


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "middleware", *args],
        input=stdin,
        capture_output=True,
        text=True,
    )


def test_cli_creates_and_updates_entries(tmp_path: Path) -> None:
    path = tmp_path / "site.htpasswd"
    done = run_cli(
        "htpasswd", str(path), "alice", "--stdin", "--rounds", "4", stdin="pässwörd\n"
    )
    assert done.returncode == 0, done.stderr
    assert "Adding password for user alice" in done.stdout
    path.write_text(path.read_text() + f"bob:{SHA1_ALICE}\n")
    done = run_cli(
        "htpasswd", str(path), "alice", "--stdin", "--rounds", "4", stdin="new\n"
    )
    assert "Updating password for user alice" in done.stdout
    users = read_htpasswd(path)
    assert set(users) == {"alice", "bob"}
    assert verify(b"new", users["alice"]) and users["bob"] == SHA1_ALICE
    assert oct(path.stat().st_mode & 0o777) == "0o640"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("--stdin",), "\n", "the password is empty"),
        (("--stdin",), "x" * 73 + "\n", "over 72 bytes"),
        (("--stdin", "--rounds", "3"), "x\n", "--rounds: expected 4 to 31"),
    ],
)
def test_cli_errors_are_one_line(
    tmp_path: Path, args: tuple[str, ...], stdin: str, message: str
) -> None:
    done = run_cli("htpasswd", str(tmp_path / "f"), "alice", *args, stdin=stdin)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and message in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_refuses_bad_user_names(tmp_path: Path) -> None:
    done = run_cli("htpasswd", str(tmp_path / "f"), "a:b", "--stdin", stdin="x\n")
    assert done.returncode == 1 and "user: no ':' or spaces" in done.stderr


def test_cli_in_process_asks_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from middleware.__main__ import main

    answers = iter(["one", "two", "same", "same"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    path = tmp_path / "f"
    assert main(["htpasswd", str(path), "alice", "--rounds", "4"]) == 1
    assert "the passwords do not match" in capsys.readouterr().err
    assert main(["htpasswd", str(path), "alice", "--rounds", "4"]) == 0
    assert verify(b"same", read_htpasswd(path)["alice"])
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("piped\n"))
    assert main(["htpasswd", str(path), "bob", "--stdin", "--rounds", "4"]) == 0
    assert set(read_htpasswd(path)) == {"alice", "bob"}
