"""Limits across processes, for real (issue 20): two gunicorn servers with four
workers each, on two free ports, sharing one redis-server started here. A client's
"5/minute" lets exactly 5 requests through in total across the eight workers, and
BasicAuth's ``max_failures=3`` holds across both servers. Every process is stopped
by its PID. BasicAuth's shared throttle is also shown atomic under five processes
sending at once, and failing to the documented answer when Redis is killed."""

from __future__ import annotations

import base64
import http.client
import multiprocessing
import os
import random
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from middleware import BasicAuth
from middleware.auth.passwords import make_bcrypt
from middleware.testing import make_environ, run
from middleware.wsgi import StartResponse, WSGIEnvironment

from .servers import free_port, redis_server, running_command, stop


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def gunicorn(port: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "--workers=4", "--graceful-timeout=2",
        f"--bind=127.0.0.1:{port}", "tests.limitapp:app",
    ]  # fmt: skip


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_limits_hold_across_two_gunicorn_servers_of_four_workers(
    redis_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "LIMIT_REDIS": redis_url,
        "LIMIT_PREFIX": f"servers:{random.getrandbits(64):x}:",
    }
    ports = [free_port(), free_port()]
    with (
        running_command(gunicorn(ports[0]), ports[0], tmp_path / "a.log", env=env),
        running_command(gunicorn(ports[1]), ports[1], tmp_path / "b.log", env=env),
    ):
        answers = [get(ports[n % 2], "/limited") for n in range(24)]
        statuses = [status for status, _ in answers]
        assert statuses.count(200) == 5, statuses  # moving window: no slack
        assert statuses.count(429) == 19
        pids = {body for status, body in answers if status == 200}
        assert len(pids) >= 2  # served by more than one worker process

        wrong = {"Authorization": basic("demo", "wrong")}
        failures = [get(ports[n % 2], "/private", wrong)[0] for n in range(6)]
        assert failures == [401, 401, 401, 429, 429, 429]
        right = {"Authorization": basic("demo", "demo-password")}
        assert get(ports[1], "/private", right)[0] == 429  # the address is throttled


def whoami(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ.get("REMOTE_USER", "").encode()]


def _guesses(url: str, address: str, start: Any, results: Any) -> None:
    """A worker process: its own BasicAuth on the shared Redis; 12 wrong
    passwords once every process is ready."""
    app = BasicAuth(
        users={"bob": make_bcrypt(b"right", 4)}, max_failures=10, throttle_store=url
    )(whoami)
    start.wait()
    for _ in range(12):
        environ = make_environ()
        environ["REMOTE_ADDR"] = address
        environ["HTTP_AUTHORIZATION"] = basic("bob", "wrong")
        results.put((run(app, environ).status or "")[:3])


def test_the_shared_throttle_is_atomic_across_five_processes(redis_url: str) -> None:
    """60 wrong passwords from five processes at once against max_failures=10:
    exactly 10 hash checks (401s), 50 refusals unread."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(5)
    results = context.Queue()
    address = f"10.9.{random.randrange(256)}.{random.randrange(256)}"
    workers = [
        context.Process(target=_guesses, args=(redis_url, address, start, results))
        for _ in range(5)
    ]
    for worker in workers:
        worker.start()
    got = sorted(results.get(timeout=60) for _ in range(60))
    for worker in workers:
        worker.join(30)
    assert got == ["401"] * 10 + ["429"] * 50


def _auth(store: str, on_store_error: str = "deny") -> Any:
    return BasicAuth(
        users={"bob": make_bcrypt(b"right", 4)},
        max_failures=2,
        throttle_store=store,
        on_store_error=on_store_error,
        cache_ttl=0,
    )(whoami)


def ask(app: Any, password: str, address: str) -> str:
    environ = make_environ()
    environ["REMOTE_ADDR"] = address
    environ["HTTP_AUTHORIZATION"] = basic("bob", password)
    served = run(app, environ)
    assert served.error is None, served.error
    return (served.status or "")[:3]


def test_two_instances_share_one_count_and_a_success_takes_its_back(
    redis_url: str,
) -> None:
    first, second = _auth(redis_url), _auth(redis_url)
    address = f"10.8.{random.randrange(256)}.{random.randrange(256)}"
    assert [ask(app, "right", address) for app in (first, second) * 3] == ["200"] * 6
    assert ask(first, "no", address) == "401"
    assert ask(second, "no", address) == "401"
    assert ask(first, "right", address) == "429"  # counted on the other instance


@pytest.mark.parametrize(
    ("on_store_error", "status"), [("deny", "503"), ("allow", "200")]
)
def test_a_killed_throttle_store_gets_the_documented_answer(
    tmp_path: Path, on_store_error: str, status: str, caplog: pytest.LogCaptureFixture
) -> None:
    with redis_server(tmp_path) as url:
        app = _auth(url, on_store_error)
        assert ask(app, "right", "10.7.0.1") == "200"
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        import redis

        pid = int(redis.Redis(port=port).info("server")["process_id"])
        os.kill(pid, 9)  # the fixture's server, by its PID
        assert ask(app, "right", "10.7.0.1") == status
        assert "the throttle store redis://127.0.0.1" in caplog.text
    _ = stop  # the fixture stops what is left by its PID


def test_a_count_without_an_expiry_is_given_one(redis_url: str) -> None:
    """Found by review: the scripts set the expiry only on a count's first
    increment, so a key left without one (a PEXPIRE that failed) never expired
    and its address was never throttled again. Now any key found without an
    expiry gets one."""
    import redis

    client = redis.Redis.from_url(redis_url)
    address = f"10.6.{random.randrange(256)}.{random.randrange(256)}"
    key = f"middleware.auth:a:{address}"
    client.set(key, 5)  # at max_failures, and no expiry
    app = _auth(redis_url)
    assert ask(app, "no", address) == "429"
    assert 0 < client.pttl(key) <= 300_000
    client.close()


def test_a_frozen_throttle_store_costs_one_timeout_and_one_line_a_second(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by review: with Redis frozen, "allow" and lock_users, a login waited
    out attempt, forgive and clear, 0.5 s each. After one failure the store is
    not asked for a second: one error line, one timeout."""
    import redis

    with redis_server(tmp_path) as url:
        app = BasicAuth(
            users={"bob": make_bcrypt(b"right", 4)},
            max_failures=3,
            throttle_store=url,
            on_store_error="allow",
            lock_users=True,
            cache_ttl=0,
        )(whoami)
        pid = int(redis.Redis.from_url(url).info("server")["process_id"])
        os.kill(pid, signal.SIGSTOP)
        try:
            answers = [ask(app, "right", "10.5.0.1") for _ in range(3)]
        finally:
            os.kill(pid, signal.SIGCONT)
    assert answers == ["200"] * 3
    assert caplog.text.count("the throttle store") == 1


def test_a_failure_window_redis_cannot_hold_is_refused(redis_url: str) -> None:
    with pytest.raises(ValueError, match="failure_window: expected at most 10 years"):
        BasicAuth(users={"bob": make_bcrypt(b"r", 4)},
                  throttle_store=redis_url, failure_window=1e16)  # fmt: skip
