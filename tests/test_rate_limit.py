"""RateLimit (issue 20): counts per address, user or key; the 429 and its fields;
exempt paths; exactly N through under a concurrent burst, in memory (threads) and
in a real redis-server (processes); a Redis killed and frozen by its PID; the
memory store's bound; bad options refused naming them."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from middleware import BasicAuth, ProxyHeaders, RateLimit, compose
from middleware import testing as conformance
from middleware.auth.passwords import make_bcrypt
from middleware.testing import Served, make_environ, run
from middleware.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

from .servers import accepting, free_port, redis_binary, redis_server, stop, wait_until


def hello(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def some_address() -> str:
    """An address no other test uses (Redis keeps counts between tests)."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(256)}"


def ask(
    app: WSGIApplication,
    address: str | None = "192.0.2.1",
    method: str = "GET",
    path: str = "/",
    **extra: str,
) -> Served:
    environ = make_environ(method, path)
    if address is not None:
        environ["REMOTE_ADDR"] = address
    environ.update(extra)
    served = run(app, environ)
    assert served.error is None, served.error
    return served


def statuses(app: WSGIApplication, count: int, **kwargs: Any) -> list[str]:
    return [(ask(app, **kwargs).status or "")[:3] for _ in range(count)]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory"
    url: str = request.getfixturevalue("redis_url")
    return url


# -- the answer ---------------------------------------------------------------------


def test_past_the_limit_a_429_with_retry_after_and_the_fields(store: str) -> None:
    app = RateLimit("3/minute", store=store)(hello)
    address = some_address()
    served = [ask(app, address) for _ in range(4)]
    assert [s.status for s in served] == ["200 OK"] * 3 + ["429 Too Many Requests"]
    assert [s.header("RateLimit") for s in served[:3]] == [
        '"3-per-1-minute";r=2;t=60',
        '"3-per-1-minute";r=1;t=60',
        '"3-per-1-minute";r=0;t=60',
    ]
    refused = served[3]
    assert refused.header("Retry-After") == "60"
    assert refused.header("RateLimit-Policy") == '"3-per-1-minute";q=3;w=60'
    assert refused.header("RateLimit") == '"3-per-1-minute";r=0;t=60'
    assert refused.header("Cache-Control") == "no-store"
    assert b"429 Too Many Requests" in refused.body
    json_page = ask(app, address, HTTP_ACCEPT="application/json")
    assert json.loads(json_page.body) == {"error": "Too Many Requests", "status": 429}


def test_every_limit_is_kept_and_the_fields_name_the_tightest(store: str) -> None:
    app = RateLimit("5/minute; 2/second", store=store)(hello)
    address = some_address()
    first = ask(app, address)
    assert first.header("RateLimit-Policy") == (
        '"5-per-1-minute";q=5;w=60, "2-per-1-second";q=2;w=1'
    )
    assert first.header("RateLimit") == '"2-per-1-second";r=1;t=1'
    assert ask(app, address).status == "200 OK"
    assert ask(app, address).status == "429 Too Many Requests"  # 2 per second


def test_a_field_the_app_set_is_left_alone() -> None:
    def own(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("ratelimit", "mine")])
        return [b""]

    served = ask(RateLimit("3/minute")(own))
    assert served.headers == [
        ("ratelimit", "mine"),
        ("RateLimit-Policy", '"3-per-1-minute";q=3;w=60'),
    ]


def test_head_and_options_are_counted_like_any_request() -> None:
    app = RateLimit("3/minute")(hello)
    answers = [ask(app, method=m).status for m in ("HEAD", "OPTIONS", "GET", "HEAD")]
    assert answers == ["200 OK"] * 3 + ["429 Too Many Requests"]
    assert ask(app, method="HEAD").body == b""


# -- keys ---------------------------------------------------------------------------

# (name, key, environs (one per request), statuses)
KEYS: list[tuple[str, Any, list[dict[str, str]], list[str]]] = [
    ("one address", "address", [{"REMOTE_ADDR": "192.0.2.1"}] * 3,
     ["200", "200", "429"]),
    ("two addresses count apart", "address",
     [{"REMOTE_ADDR": "192.0.2.1"}, {"REMOTE_ADDR": "192.0.2.2"}] * 2,
     ["200", "200", "200", "200"]),
    ("IPv6 counts by its /64", "address",
     [{"REMOTE_ADDR": "2001:db8:1:2::1"}, {"REMOTE_ADDR": "2001:db8:1:2:ffff::9"},
      {"REMOTE_ADDR": "2001:db8:1:2::77"}], ["200", "200", "429"]),
    ("another /64 is another client", "address",
     [{"REMOTE_ADDR": "2001:db8:1:2::1"}] * 2 + [{"REMOTE_ADDR": "2001:db8:1:3::1"}],
     ["200", "200", "200"]),
    ("no address: not limited", "address", [{"REMOTE_ADDR": ""}] * 3,
     ["200", "200", "200"]),
    ("a user", "user", [{"REMOTE_USER": "ann", "REMOTE_ADDR": f"192.0.2.{n}"}
                        for n in range(3)], ["200", "200", "429"]),
    ("anonymous: not limited by user", "user", [{}] * 3, ["200", "200", "200"]),
    ("a key function", lambda environ: environ.get("HTTP_X_API_KEY"),
     [{"HTTP_X_API_KEY": "k1"}] * 2
     + [{"HTTP_X_API_KEY": "k2"}, {"HTTP_X_API_KEY": "k1"}],
     ["200", "200", "200", "429"]),
    ("a key function's None: not limited", lambda environ: None, [{}] * 3,
     ["200", "200", "200"]),
    ("a huge key is kept as a digest", lambda environ: environ["HTTP_X_K"],
     [{"HTTP_X_K": "k" * 100_000}] * 3, ["200", "200", "429"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("key", "environs", "expected"),
    [row[1:] for row in KEYS],
    ids=[row[0] for row in KEYS],
)
def test_keys(key: Any, environs: list[dict[str, str]], expected: list[str]) -> None:
    app = RateLimit("2/minute", key=key)(hello)
    got = []
    for extra in environs:
        environ = make_environ()
        environ.pop("REMOTE_ADDR", None)
        environ.update(extra)
        got.append((run(app, environ).status or "")[:3])
    assert got == expected


def test_a_key_function_that_raises_is_logged_and_not_limited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(environ: WSGIEnvironment) -> str:
        raise KeyError("HTTP_X_API_KEY")

    app = RateLimit("1/minute", key=broken)(hello)
    assert statuses(app, 3) == ["200"] * 3
    assert "the key function" in caplog.text and "raised; not limited" in caplog.text


def test_behind_proxy_headers_each_client_counts_apart() -> None:
    """A client that spoofs X-Forwarded-For is counted by the address the proxy
    saw; two real clients behind one proxy count apart."""
    app = compose(hello, ProxyHeaders(1), RateLimit("2/minute"))
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    spoofing = [
        ask(app, **proxy, HTTP_X_FORWARDED_FOR=f"6.6.6.{n}, 203.0.113.7").status
        for n in range(3)
    ]
    assert spoofing == ["200 OK", "200 OK", "429 Too Many Requests"]
    other = ask(app, **proxy, HTTP_X_FORWARDED_FOR="203.0.113.8")
    assert other.status == "200 OK"


def test_behind_basic_auth_each_user_counts_apart() -> None:
    import base64

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    users = {"ann": make_bcrypt(b"a-pass", 4), "bob": make_bcrypt(b"b-pass", 4)}
    app = compose(hello, BasicAuth(users=users), RateLimit("2/minute", key="user"))
    ann = [ask(app, HTTP_AUTHORIZATION=basic("ann", "a-pass")).status for _ in range(3)]
    assert ann == ["200 OK", "200 OK", "429 Too Many Requests"]
    assert ask(app, HTTP_AUTHORIZATION=basic("bob", "b-pass")).status == "200 OK"


# (path, exempt)
EXEMPT = [
    ("/healthz", True),
    ("/healthz/db", True),
    ("/healthzX", False),
    ("/healthz/../admin", False),
    ("//healthz", False),
    ("/static/app.css", True),
    ("/", False),
]


@pytest.mark.parametrize(("path", "exempt"), EXEMPT)
def test_exempt_paths_by_whole_segments(path: str, exempt: bool) -> None:
    app = RateLimit("1/minute", exempt=["/healthz", "/static/"])(hello)
    got = statuses(app, 3, path=path)
    assert got == (["200"] * 3 if exempt else ["200", "429", "429"])


# -- concurrency: exactly N through ---------------------------------------------------


def test_fifty_concurrent_requests_let_exactly_ten_through_in_memory() -> None:
    app = RateLimit("10/minute")(hello)
    start = threading.Barrier(50)
    got: list[str] = []

    def one() -> None:
        start.wait()
        got.append((ask(app, "192.0.2.50").status or "")[:3])

    threads = [threading.Thread(target=one) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(got) == ["200"] * 10 + ["429"] * 40


def _burst(url: str, address: str, start: Any, count: int, results: Any) -> None:
    """A worker process: its own RateLimit on the shared Redis, *count* requests
    once every process is ready."""
    app = RateLimit("10/minute", store=url)(hello)
    start.wait()
    for _ in range(count):
        results.put((ask(app, address).status or "")[:3])


@pytest.mark.parametrize("strategy", ["moving-window", "fixed-window"])
def test_fifty_requests_from_five_processes_let_exactly_ten_through_on_redis(
    redis_url: str, strategy: str
) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(5)
    results = context.Queue()
    address = some_address()
    workers = [
        context.Process(target=_burst, args=(redis_url, address, start, 10, results))
        for _ in range(5)
    ]
    for worker in workers:
        worker.start()
    got = sorted(results.get(timeout=60) for _ in range(50))
    for worker in workers:
        worker.join(30)
    assert [worker.exitcode for worker in workers] == [0] * 5
    assert got == ["200"] * 10 + ["429"] * 40


@pytest.mark.parametrize(
    "strategy", ["moving-window", "fixed-window", "sliding-window-counter"]
)
def test_each_strategy_allows_the_limit(store: str, strategy: str) -> None:
    app = RateLimit("5/minute", store=store, strategy=strategy)(hello)
    assert statuses(app, 7, address=some_address()) == ["200"] * 5 + ["429"] * 2


# -- the store failing ----------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A redis-server of this test's own (it is killed and frozen): (URL, start)."""
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    command = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
        "--save", "", "--appendonly", "no",
    ]  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        procs.append(proc)
        wait_until(lambda: accepting(port), 30, lambda: "redis-server did not start")
        return proc

    try:
        yield f"redis://127.0.0.1:{port}/0", start
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
            stop(proc)


@pytest.mark.parametrize(
    ("on_store_error", "status"), [("deny", "503"), ("allow", "200")]
)
def test_a_killed_redis_gets_the_documented_answer_and_a_restart_recovers(
    own_redis: tuple[str, Any],
    on_store_error: str,
    status: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, start = own_redis
    proc = start()
    app = RateLimit("2/minute", store=url, on_store_error=on_store_error)(hello)
    assert statuses(app, 1) == ["200"]
    stop(proc)  # by its PID
    down = ask(app)
    assert (down.status or "")[:3] == status
    if status == "503":
        assert down.header("Retry-After") == "1"
    assert f"the store {url} failed" in caplog.text
    # For a second after a failure the store is not asked (the same answer, at
    # once, no more error lines): a frozen Redis costs one timeout a second.
    assert (ask(app).status or "")[:3] == status
    assert caplog.text.count("failed (") == 1
    start()  # the same port, no persistence: the counts start again
    time.sleep(1.1)
    assert statuses(app, 3) == ["200", "200", "429"]


def test_a_frozen_redis_fails_fast_and_recovers(own_redis: tuple[str, Any]) -> None:
    url, start = own_redis
    proc = start()
    app = RateLimit("2/minute", store=url)(hello)
    assert statuses(app, 1) == ["200"]
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        frozen = ask(app)  # within the store's 0.5 s timeouts, not redis-py's 5 s+
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert frozen.status == "503 Service Unavailable"
    time.sleep(1.1)  # the breaker's second
    after = statuses(app, 2)
    # Recovered: answers again, and the count survived the freeze. The request
    # sent during it may have been counted when Redis resumed (it read the
    # command the client gave up on), so one or none more is let through.
    assert "503" not in after and after[-1] == "429", after


# -- the memory store's bound ---------------------------------------------------------


def test_the_memory_store_tracks_at_most_its_bound_of_identifiers() -> None:
    """5,000 unique clients against a bound of 1,000: at most 1,000 are tracked,
    and a client forgotten starts again rather than being refused forever."""
    layer = RateLimit("1/hour")
    assert layer._tracked is not None
    layer._tracked.limit = 1_000  # the default is 100,000; the rule is the same
    app = layer(hello)
    assert ask(app, "198.51.100.1").status == "200 OK"
    assert ask(app, "198.51.100.1").status == "429 Too Many Requests"
    for n in range(5_000):
        ask(app, f"10.0.{n // 256}.{n % 256}")
    assert len(layer._tracked) == 1_000
    assert ask(app, "198.51.100.1").status == "200 OK"  # forgotten: counted afresh


# -- options --------------------------------------------------------------------------

BAD_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"limits": "lots"}, "limits: expected limits such as '10/second'"),
    ({"limits": ""}, "limits: expected"),
    ({"limits": 10}, "limits: expected"),
    ({"limits": ["10/second", 5]}, "limits: expected"),
    ({"limits": "10/second", "key": "ip"},
     "key: expected 'address', 'user' or a callable"),
    ({"limits": "10/second", "store": "memcached://x"}, "store: expected 'memory'"),
    ({"limits": "10/second", "store": 5}, "store: expected 'memory'"),
    ({"limits": "10/second", "strategy": "token-bucket"},
     "strategy: expected 'fixed-window'"),
    ({"limits": "10/second", "exempt": "/healthz"}, "exempt: expected a list of paths"),
    ({"limits": "10/second", "on_store_error": "ignore"},
     "on_store_error: expected 'deny' or 'allow'"),
]  # fmt: skip


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_bad_options_fail_at_construction_naming_them(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        RateLimit(**options)
    assert message in str(raised.value)


def test_a_redis_url_with_a_password_is_not_shown() -> None:
    layer = RateLimit("1/second", store="redis://user:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in repr(layer)


test_conformance = conformance.suite(
    conformance.Subject(
        "rate-limit",
        RateLimit("1000000/second"),
        environ={"REMOTE_ADDR": "192.0.2.99"},
    )
)


def test_a_429_is_logged_at_no_level_above_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="middleware.rate_limit"):
        statuses(RateLimit("1/minute")(hello), 3)
    assert not [r for r in caplog.records if r.levelno > logging.INFO]


def test_two_strategies_on_one_redis_keep_their_own_records(redis_url: str) -> None:
    """Found by the benchmark: the same limit and key counted by a fixed and a
    moving window in one Redis shared a key of two types; Redis answered
    WRONGTYPE and every request got the store-error 503."""
    address = some_address()
    fixed = RateLimit("2/minute", store=redis_url, strategy="fixed-window")(hello)
    moving = RateLimit("2/minute", store=redis_url, strategy="moving-window")(hello)
    assert statuses(fixed, 3, address=address) == ["200", "200", "429"]
    assert statuses(moving, 3, address=address) == ["200", "200", "429"]


# -- found by review -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("::ffff:192.0.2.1", "192.0.2.1"),  # a dual-stack server's IPv4 client
        ("::ffff:192.0.2.2", "192.0.2.2"),
        ("::1", "::1"),
        ("64:ff9b::c000:201", "64:ff9b::c000:201"),  # NAT64: one IPv4 client each
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("192.0.2.1", "192.0.2.1"),
        ("", None),
    ],
)
def test_address_keys(remote: str, key: str | None) -> None:
    """Before: every IPv4 client of a dual-stack server (::ffff:a.b.c.d) shared
    the one key ::/64, so one client could get them all refused."""
    from middleware.rate_limit import address_key

    assert address_key({"REMOTE_ADDR": remote}) == key


def test_a_key_whose_str_raises_is_logged_and_not_limited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Odd:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    app = RateLimit("1/minute", key=lambda environ: Odd())(hello)  # type: ignore[arg-type,return-value]
    assert statuses(app, 2) == ["200", "200"]
    assert "raised; not limited" in caplog.text


def test_a_key_with_a_lone_surrogate_is_counted_on_redis(redis_url: str) -> None:
    """Before: only keys over 64 characters were digested; a short one with a
    lone surrogate could not be sent to Redis (a 503 on every request)."""
    odd = "k\udcff" + str(random.getrandbits(32))
    app = RateLimit("2/minute", store=redis_url, key=lambda environ: odd)(hello)
    assert statuses(app, 3) == ["200", "200", "429"]


@pytest.mark.parametrize(
    "limits", ["99999999999999999999999/second", "1/100000000000 years", "0/second"]
)
def test_limits_redis_and_the_fields_cannot_hold_are_refused(limits: str) -> None:
    with pytest.raises(ValueError, match="limits: each limit allows 1 to 10"):
        RateLimit(limits)


def test_an_exempt_prefix_with_a_trailing_slash_exempts_the_path_itself() -> None:
    app = RateLimit("1/minute", exempt=["/healthz/"])(hello)
    assert statuses(app, 3, path="/healthz") == ["200"] * 3


def test_a_redis_client_that_could_hang_or_is_async_is_refused() -> None:
    import redis
    import redis.asyncio
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    with pytest.raises(ValueError, match="store: this redis client could hold"):
        RateLimit("1/second", store=redis.Redis(port=1))  # 5 s, 10 retries
    no_timeout = redis.Redis(port=1, socket_timeout=None, socket_connect_timeout=None)
    with pytest.raises(ValueError, match="for ever"):
        RateLimit("1/second", store=no_timeout)
    with pytest.raises(ValueError, match="store: expected 'memory'"):
        RateLimit("1/second", store=redis.asyncio.Redis(port=1))
    ok = redis.Redis(
        port=1,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )
    RateLimit("1/second", store=ok)


def test_a_password_in_the_url_query_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens: every count fails
    app = RateLimit("1/second", store=f"redis://127.0.0.1:{port}/0?password=hunter2")(
        hello
    )
    assert statuses(app, 1) == ["503"]
    assert "hunter2" not in caplog.text and f"redis://127.0.0.1:{port}/0" in caplog.text


def test_the_memory_bound_holds_for_thousands_of_huge_hostile_keys() -> None:
    """3,000 unique 5 KB keys against a bound of 1,000: at most 1,000 tracked,
    each kept as a short digest (the bytes per entry are bounded too)."""
    layer = RateLimit("5/hour", key=lambda environ: environ["HTTP_X_K"])
    assert layer._tracked is not None
    layer._tracked.limit = 1_000
    app = layer(hello)
    for n in range(3_000):
        ask(app, HTTP_X_K=f"{n:05d}" + "k" * 5_000)
    assert len(layer._tracked) == 1_000
    assert max(len(key) for key in layer._tracked._seen) <= 64
