"""Sessions under tampering and abuse (issue 18, items 6, 8 and 9): ``Vary:
Cookie`` whenever the response depends on the cookie, one cookie (and one store
lookup) per request however many a request repeats, and a table of tamper
vectors that must each give a fresh session, never the victim's and never a 500.
Stores are real (SQLite, a real redis-server).
"""

from __future__ import annotations

import base64
import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from middleware.session import RedisStore, Session, SQLiteStore, get_session
from middleware.session.codec import Codec
from middleware.testing import make_environ, run
from middleware.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

from .servers import redis_server

SECRET = "s" * 32
OTHER = "o" * 32


def signed(payload: Any, secret: str = SECRET) -> str:
    return Codec(secret.encode(), (), "middleware.session.cookie").dumps(payload)


def reader(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    session = get_session(environ)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"user": session.get("user"), "new": session.new}).encode()]


def ask(app: WSGIApplication, cookie: str | None) -> tuple[str, dict[str, Any], Any]:
    environ = make_environ()
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    served = run(app, environ)
    assert served.error is None, served.error
    return served.status or "", json.loads(served.body), served


def login(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    get_session(environ)["user"] = "ann"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b""]


def logged_in(session: Session) -> str:
    """The cookie (name=value) of a session that logged "ann" in."""
    served = run(session(login), make_environ())
    return (served.header("Set-Cookie") or "").split(";")[0]


# -- 6. Vary: Cookie ------------------------------------------------------------------


@pytest.mark.parametrize(
    "cookie", [None, "session=" + signed({"c": 1, "t": 1, "d": {"a": 1}})]
)
@pytest.mark.parametrize("change", ["invalidate", "clear", "regenerate", "set"])
def test_a_change_varies_by_cookie_with_or_without_a_cookie(
    cookie: str | None, change: str
) -> None:
    # Before: invalidate() on a request without a cookie sent no Vary: Cookie,
    # although the same request with a cookie got a deletion cookie.
    def changing(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> list[bytes]:
        session = get_session(environ)
        if change == "set":
            session["a"] = 2
        else:
            getattr(session, change)()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    environ = make_environ()
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    served = run(Session(SECRET)(changing), environ)
    assert "Cookie" in (served.header("Vary") or ""), served.headers


# -- 8. repeated cookies ------------------------------------------------------------


OPEN_STORES: list[RedisStore] = []


def closing(store: RedisStore) -> RedisStore:
    """*store*, its client closed when the test ends (no socket left to the GC)."""
    OPEN_STORES.append(store)
    return store


@pytest.fixture(autouse=True)
def close_stores() -> Iterator[None]:
    yield
    while OPEN_STORES:
        OPEN_STORES.pop().client.close()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def test_thousands_of_repeated_cookies_cost_one_store_lookup(redis_url: str) -> None:
    # Before: a request with 4,800 session cookies made 4,800 Redis GETs.
    store = closing(
        RedisStore(redis_url, prefix=f"hostile:{random.getrandbits(64):x}:")
    )
    app = Session(SECRET, store=store)(reader)
    # Ids of the right format (43 URL-safe characters) that the store never issued.
    junk = "; ".join(f"session={n:043d}" for n in range(4800))
    before = store.client.info("commandstats").get("cmdstat_get", {}).get("calls", 0)
    status, body, _ = ask(app, junk)
    after = store.client.info("commandstats").get("cmdstat_get", {}).get("calls", 0)
    assert status == "200 OK" and body == {"user": None, "new": True}
    assert after - before <= 1, after - before


def test_the_first_cookie_of_the_name_wins(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    app = Session(SECRET, store=store)

    cookie = logged_in(app)
    wrapped = app(reader)
    assert ask(wrapped, cookie)[1]["user"] == "ann"
    assert ask(wrapped, f"{cookie}; session=junk")[1]["user"] == "ann"
    assert ask(wrapped, f"session=junk; {cookie}")[1]["user"] is None  # first wins


# -- 9. tamper vectors ---------------------------------------------------------------


def flip(value: str, index: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    char = value[index]
    return (
        value[:index] + alphabet[(alphabet.index(char) + 1) % 64] + value[index + 1 :]
    )


def insert(value: str, index: int, junk: str) -> str:
    return value[:index] + junk + value[index:]


def last_bits(value: str) -> str:
    """Another base64 spelling of the same bytes: the unused low bits of the last
    character set (a lenient decoder reads the same bytes)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 4, 3: 2}.get(len(value) % 4, 0)
    char = value[-1]
    return value[:-1] + alphabet[alphabet.index(char) | ((1 << unused) - 1)]


NOW = int(time.time())
VICTIM = {"c": NOW, "t": NOW, "d": {"user": "victim"}}
GOOD = signed(VICTIM)
AS_RECORD = Codec(SECRET.encode(), (), "middleware.session.record").dumps(VICTIM)
PAYLOAD = json.dumps(VICTIM).encode()
UNSIGNED = base64.urlsafe_b64encode(PAYLOAD).decode().rstrip("=")
ZEROED = base64.urlsafe_b64encode(bytes(32) + PAYLOAD).decode().rstrip("=")
STANDARD = GOOD.translate(str.maketrans("-_", "+/"))
if STANDARD == GOOD:
    STANDARD = GOOD[:-1] + "+"
RESPELT = last_bits(GOOD) if last_bits(GOOD) != GOOD else GOOD + "A"


# (name, the cookie value sent): each must give a fresh session, never "victim".
TAMPER = [
    ("flip-first", flip(GOOD, 0)),
    ("flip-in-signature", flip(GOOD, 20)),
    ("flip-at-the-seam", flip(GOOD, 43)),
    ("flip-in-payload", flip(GOOD, 60)),
    ("flip-last", flip(GOOD, len(GOOD) - 1)),
    ("truncated-by-one", GOOD[:-1]),
    ("truncated-to-signature", GOOD[:43]),
    ("truncated-to-half", GOOD[: len(GOOD) // 2]),
    ("one-char", GOOD[:1]),
    ("doubled", GOOD + GOOD),
    ("other-secret", signed(VICTIM, OTHER)),
    ("signed-as-a-record", AS_RECORD),
    ("padding-added", GOOD + "=" * (-len(GOOD) % 4 or 4)),
    ("junk-dot-inside", insert(GOOD, 30, ".")),
    ("junk-space-inside", insert(GOOD, 30, " ")),
    ("junk-equals-inside", insert(GOOD, 30, "=")),
    ("junk-plus-inside", insert(GOOD, 30, "+")),
    ("junk-slash-inside", insert(GOOD, 30, "/")),
    ("junk-percent-inside", insert(GOOD, 30, "%")),
    ("junk-tilde-inside", insert(GOOD, 30, "~")),
    # Four junk characters keep the length's remainder: a lenient decoder skips
    # them and reads the very bytes issued.
    ("four-dots-inside", insert(GOOD, 30, "....")),
    ("four-spaces-inside", insert(GOOD, 30, "    ")),
    ("four-tildes-inside", insert(GOOD, 50, "~~~~")),
    ("two-pairs-apart", insert(insert(GOOD, 50, "!!"), 20, "**")),
    ("junk-at-the-end", GOOD + "!"),
    ("junk-at-the-start", "*" + GOOD),
    ("standard-alphabet", STANDARD),
    ("non-canonical-last-bits", RESPELT),
    ("quoted-with-junk", '"' + GOOD + '"x'),
    ("non-ascii", GOOD[:10] + "é" + GOOD[10:]),
    ("nul", GOOD + "\x00"),
    ("oversized", "A" * 100_000),
    ("empty", ""),
    ("not-base64-at-all", "{\"d\": {\"user\": \"victim\"}}"),
    ("unsigned-payload", UNSIGNED),
    ("zeroed-signature", ZEROED),
]  # fmt: skip


@pytest.mark.parametrize("value", [v for _, v in TAMPER], ids=[n for n, _ in TAMPER])
def test_a_tampered_cookie_is_a_fresh_session(value: str) -> None:
    # Before: 26 of 33 junk-character insertions still verified as the victim.
    app = Session(SECRET)(reader)
    assert ask(app, "session=" + GOOD)[1]["user"] == "victim"  # the vector is live
    status, body, _ = ask(app, "session=" + value)
    assert status == "200 OK"
    assert body == {"user": None, "new": True}, value


# -- 10. a Redis that freezes --------------------------------------------------------


def test_a_frozen_redis_fails_requests_fast_and_they_recover(redis_url: str) -> None:
    # Before: a frozen Redis held every thread for the client's 5 s timeout.
    import os
    import signal

    from middleware.session import StoreError

    store = closing(RedisStore(redis_url, prefix=f"frozen:{random.getrandbits(64):x}:"))
    assert store.timeout == 0.5  # the default, given to redis-py for both waits
    kwargs = store.client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 0.5
    app = Session(SECRET, store=store)

    cookie = logged_in(app)
    pid = int(store.client.info("server")["process_id"])
    os.kill(pid, signal.SIGSTOP)  # the server started by this module, by its PID
    try:
        environ = make_environ()
        environ["HTTP_COOKIE"] = cookie
        frozen = run(app(reader), environ)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert isinstance(frozen.error, StoreError)
    assert "timeout of 0.5 s" in str(frozen.error) and "RedisStore(" in str(
        frozen.error
    )
    assert ask(app(reader), cookie)[1]["user"] == "ann"  # recovered, data intact


@pytest.mark.parametrize("timeout", [0, -1, True, "1", None])
def test_a_bad_redis_timeout_is_refused_naming_it(redis_url: str, timeout: Any) -> None:
    with pytest.raises(ValueError, match="timeout"):
        RedisStore(redis_url, timeout=timeout)


# -- 7. a failed response changes no store --------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "redis"])
def a_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    from middleware.session import MemoryStore

    if request.param == "memory":
        return MemoryStore()
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "s.db")
    url = request.getfixturevalue("redis_url")
    return closing(RedisStore(url, prefix=f"failed:{random.getrandbits(64):x}:"))


@pytest.mark.parametrize("catcher", ["outside", "inside"])
def test_an_error_after_a_200_started_leaves_the_store_unchanged(
    a_store: Any, catcher: str
) -> None:
    # Before: the app set a value, started a 200, then its body raised; the client
    # got a 500 without Set-Cookie, but the store had been written at the start,
    # so the next request saw the change.
    from middleware import ErrorCatcher, compose

    def failing(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        get_session(environ)["user"] = "mallory"
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body() -> Iterator[bytes]:
            yield from ()
            raise RuntimeError("the body failed")

        return body()

    session = Session(SECRET, store=a_store)
    cookie = logged_in(session)
    layers = (
        [ErrorCatcher(), session] if catcher == "outside" else [session, ErrorCatcher()]
    )
    environ = make_environ()
    environ["HTTP_COOKIE"] = cookie
    failed = run(compose(failing, *layers), environ)
    assert failed.status == "500 Internal Server Error"
    assert failed.header("Set-Cookie") is None
    assert ask(session(reader), cookie)[1]["user"] == "ann"  # unchanged

    def renaming(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> list[bytes]:
        get_session(environ)["user"] = "bob"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    environ = make_environ()
    environ["HTTP_COOKIE"] = cookie
    assert run(compose(renaming, *layers), environ).status == "200 OK"
    assert ask(session(reader), cookie)[1]["user"] == "bob"  # a success commits


# -- store faults ---------------------------------------------------------------------


def test_a_killed_redis_fails_requests_with_a_store_error_and_a_restart_recovers(
    tmp_path: Path,
) -> None:
    """Redis killed by its PID: each request that touches the session fails with a
    StoreError naming the store (the app's 500), none hangs; restarted on the same
    port (no persistence), the next request gets a fresh session, not an error."""
    import subprocess

    from middleware.session import StoreError

    from .servers import accepting, free_port, redis_binary, stop, wait_until

    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    command = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
        "--save", "", "--appendonly", "no",
    ]  # fmt: skip

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(lambda: accepting(port), 30, lambda: "redis-server did not start")
        return proc

    proc = start()
    try:
        store = closing(RedisStore(f"redis://127.0.0.1:{port}/0", prefix="killed:"))
        session = Session(SECRET, store=store)
        cookie = logged_in(session)
        stop(proc)  # by its PID
        environ = make_environ()
        environ["HTTP_COOKIE"] = cookie
        down = run(session(reader), environ)
        assert isinstance(down.error, StoreError), down.error
        assert "RedisStore(" in str(down.error)
        proc = start()
        status, body, _ = ask(session(reader), cookie)
        assert (status, body) == ("200 OK", {"user": None, "new": True})
        assert ask(session(reader), logged_in(session))[1]["user"] == "ann"
    finally:
        stop(proc)


def test_a_locked_sqlite_database_fails_a_write_within_its_timeout(
    tmp_path: Path,
) -> None:
    """Another process holding the write lock: the save, made at the end of the
    response (item 7), waits the store's timeout, then fails with a StoreError
    naming the store, raised to the server from close() (which logs it; the client
    has its response by then), and the data already there is intact for the next
    request."""
    import sqlite3

    from middleware.session import StoreError

    store = SQLiteStore(tmp_path / "s.db", timeout=0.3)
    session = Session(SECRET, store=store)
    cookie = logged_in(session)
    locker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:

        def renaming(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
            get_session(environ)["user"] = "bob"
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b""]

        environ = make_environ()
        environ["HTTP_COOKIE"] = cookie
        locked = run(session(renaming), environ)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert isinstance(locked.error, StoreError), locked.error
    assert "SQLiteStore(" in str(locked.error)
    assert ask(session(reader), cookie)[1]["user"] == "ann"


def test_a_failed_save_at_the_end_keeps_the_old_record(redis_url: str) -> None:
    """Found by review: the end-of-response writes deleted the old record before
    saving the new one, so a save refused by Redis (out of memory; DEL still
    works) lost the session outright behind a 200. The save goes first now."""
    from middleware.session import StoreError

    store = closing(RedisStore(redis_url, prefix=f"oom:{random.getrandbits(64):x}:"))
    session = Session(SECRET, store=store)
    cookie = logged_in(session)

    def regenerating(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        get_session(environ).regenerate()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    client = store.client
    policy = str(client.config_get("maxmemory-policy")["maxmemory-policy"])
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)
    try:
        environ = make_environ()
        environ["HTTP_COOKIE"] = cookie
        failed = run(session(regenerating), environ)
    finally:
        client.config_set("maxmemory", 0)
        client.config_set("maxmemory-policy", policy)
    assert isinstance(failed.error, StoreError)  # raised to the server from close()
    assert ask(session(reader), cookie)[1]["user"] == "ann"  # the old record stayed


# -- SQLite faults: a database that cannot be written, removed, replaced ---------------

# Root writes any file whatever its mode, so the child that must be refused runs
# without the two capabilities that let it (setpriv, from util-linux); anyone else
# is bound by the modes already.
UNPRIVILEGED = (
    [
        "setpriv",
        "--inh-caps=-dac_override,-dac_read_search",
        "--bounding-set=-dac_override,-dac_read_search",
    ]
    if os.geteuid() == 0
    else []
)
OPEN_STORE = """
import sys
from middleware.session import SQLiteStore
try:
    SQLiteStore(sys.argv[1])
except Exception as exc:
    print(type(exc).__name__, exc)
else:
    print("opened")
"""


def _read_only_file(folder: Path) -> None:
    SQLiteStore(folder / "s.db")
    (folder / "s.db").chmod(0o444)


def _read_only_folder(folder: Path) -> None:
    folder.chmod(0o555)


def _read_only_folder_with_a_database(folder: Path) -> None:
    _plain_database(folder / "s.db")  # writable, but its -wal cannot be made
    folder.chmod(0o555)


def _plain_database(path: Path) -> None:
    """A database with the store's table, made and closed (nothing left in a WAL)."""
    import sqlite3

    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "CREATE TABLE sessions (id TEXT PRIMARY KEY, value TEXT NOT NULL, "
            "expires REAL NOT NULL)"
        )
    connection.close()
    assert [file.name for file in path.parent.iterdir()] == [path.name]


# (name, how the folder is made unwritable, what SQLite says)
UNWRITABLE = [
    ("the database file is read-only", _read_only_file, "readonly database"),
    ("the folder is read-only, no database yet", _read_only_folder, "unable to open"),
    (
        "the folder is read-only, the database writable",
        _read_only_folder_with_a_database,
        "readonly database",
    ),
]


@pytest.mark.parametrize(
    ("make", "says"),
    [row[1:] for row in UNWRITABLE],
    ids=[row[0] for row in UNWRITABLE],
)
def test_a_database_that_cannot_be_written_is_refused_when_the_store_opens(
    tmp_path: Path, make: Any, says: str
) -> None:
    """Before, it opened and every login failed later, at the end of its response
    (a cookie for a session that was never saved). Now the store's first write is
    at construction: the error names the store and what SQLite said."""
    import subprocess
    import sys

    folder = tmp_path / "db"
    folder.mkdir()
    make(folder)
    try:
        done = subprocess.run(
            [*UNPRIVILEGED, sys.executable, "-c", OPEN_STORE, str(folder / "s.db")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        folder.chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("StoreError SQLiteStore("), done.stdout
    assert "failed to open and write its database" in done.stdout
    assert says in done.stdout, done.stdout


def test_a_writable_database_opens_in_the_same_child(tmp_path: Path) -> None:
    """The control for the table above: the unprivileged child opens a database it
    may write."""
    import subprocess
    import sys

    done = subprocess.run(
        [*UNPRIVILEGED, sys.executable, "-c", OPEN_STORE, str(tmp_path / "s.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "opened", (done.stdout, done.stderr)


def _remove(path: Path) -> None:
    for file in path.parent.glob(path.name + "*"):  # s.db, s.db-wal, s.db-shm
        file.unlink()


def _replace(path: Path) -> None:
    fresh = path.parent / "fresh" / path.name  # as a restore from a backup would
    fresh.parent.mkdir()
    _plain_database(fresh)
    _remove(path)
    os.replace(fresh, path)


@pytest.mark.parametrize("change", [_remove, _replace], ids=["removed", "replaced"])
def test_a_database_removed_or_replaced_under_a_running_store_gives_fresh_sessions(
    tmp_path: Path, change: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: a thread that had a connection went on writing to the deleted file
    (logins that no other thread or process could see), and every other thread
    failed with "no such table" (a 500 on every request). Now each thread opens
    the file again, within a second: a fresh session for the old cookie, a warning
    in the log, and new logins land where other processes read."""
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    session = Session(SECRET, store=store)
    other = ThreadPoolExecutor(max_workers=1)  # a second worker thread
    try:
        cookie = logged_in(session)
        assert other.submit(ask, session(reader), cookie).result()[1]["user"] == "ann"
        change(path)
        time.sleep(1.1)  # each thread looks at the file once a second
        for worker in (ask, lambda *args: other.submit(ask, *args).result()):
            status, body, _ = worker(session(reader), cookie)
            assert (status, body) == ("200 OK", {"user": None, "new": True})
        again = other.submit(logged_in, session).result()
        assert ask(session(reader), again)[1]["user"] == "ann"
    finally:
        other.shutdown()
    elsewhere = Session(SECRET, store=SQLiteStore(path))  # its own connection
    assert ask(elsewhere(reader), again)[1]["user"] == "ann"
    assert "removed or replaced; opened it again" in caplog.text


# -- threads and processes writing one session ---------------------------------------

# The rule kept (docs/sessions.rst, "Concurrent requests"): with a store, of two
# responses that change one session, the one that completes last wins, whole: the
# session it decided when it started, never a mix of the two.


def writer(
    changes: dict[str, Any], hold: Any = None, ready: Any = None
) -> WSGIApplication:
    """An app that makes *changes* to the session, starts its response, sets
    *ready*, and finishes its body only when *hold* is set (threading.Events)."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        session = get_session(environ)
        session.update(changes)
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body() -> Iterator[bytes]:
            if ready is not None:
                ready.set()
            if hold is not None:
                assert hold.wait(30)
            yield b"done"

        return body()

    return app


def everything(session: Session, cookie: str) -> dict[str, Any]:
    """The session's whole content, as the next request sees it."""
    seen: dict[str, Any] = {}

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        seen.update(get_session(environ))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    environ = make_environ()
    environ["HTTP_COOKIE"] = cookie
    assert run(session(app), environ).error is None
    return seen


@pytest.mark.parametrize("winner", ["A", "B"])
def test_of_two_writers_the_one_that_completes_last_wins_whole(
    a_store: Any, winner: str
) -> None:
    """Both requests have read the session and made their changes before either
    completes; then the other one is let finish first."""
    import threading

    session = Session(SECRET, store=a_store)
    cookie = logged_in(session)
    changes: dict[str, dict[str, Any]] = {
        "A": {"cart": ["apple"], "by": "A"},
        "B": {"theme": "dark", "by": "B"},
    }
    holds = {name: threading.Event() for name in changes}
    ready = {name: threading.Event() for name in changes}
    errors: dict[str, BaseException | None] = {}

    def request(name: str) -> None:
        environ = make_environ()
        environ["HTTP_COOKIE"] = cookie
        app = session(writer(changes[name], holds[name], ready[name]))
        errors[name] = run(app, environ).error

    threads = {name: threading.Thread(target=request, args=(name,)) for name in changes}
    for thread in threads.values():
        thread.start()
    assert all(event.wait(30) for event in ready.values())
    loser = "B" if winner == "A" else "A"
    for name in (loser, winner):
        holds[name].set()
        threads[name].join(30)
    assert errors == {"A": None, "B": None}
    assert everything(session, cookie) == {"user": "ann", **changes[winner]}


def _write_many(session: Session, cookie: str, writer_id: int, count: int) -> list[str]:
    """*count* requests by one writer, each a consistent record; the errors."""
    problems = []
    for n in range(count):
        environ = make_environ()
        environ["HTTP_COOKIE"] = cookie
        record = {"writer": writer_id, "n": n, "check": writer_id * 1000 + n}
        served = run(session(writer(record)), environ)
        if served.error is not None or served.status != "200 OK":
            problems.append(f"{served.status} {served.error!r}")
    return problems


def _consistent(seen: dict[str, Any], writers: int, count: int) -> None:
    assert seen["user"] == "ann"
    assert 0 <= seen["writer"] < writers and 0 <= seen["n"] < count
    assert seen["check"] == seen["writer"] * 1000 + seen["n"], seen


def test_sixteen_threads_writing_one_session_leave_one_whole_record(
    a_store: Any,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    session = Session(SECRET, store=a_store)
    cookie = logged_in(session)
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(_write_many, session, cookie, i, 25) for i in range(16)]
        results = [future.result() for future in futures]
    assert [problem for result in results for problem in result] == []
    _consistent(everything(session, cookie), 16, 25)


def _child_writes(store_kind: str, where: str, cookie: str, writer_id: int) -> None:
    """A worker process: its own store object, as a forked gunicorn worker has."""
    store: Any
    if store_kind == "sqlite":
        store = SQLiteStore(where)
    else:
        store = RedisStore(where.split("|")[0], prefix=where.split("|")[1])
    problems = _write_many(Session(SECRET, store=store), cookie, writer_id, 25)
    if problems:
        raise SystemExit(f"writer {writer_id}: {problems[:3]}")


@pytest.mark.parametrize("store_kind", ["sqlite", "redis"])
def test_four_processes_writing_one_session_leave_one_whole_record(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import multiprocessing

    store: Any
    if store_kind == "sqlite":
        where = str(tmp_path / "s.db")
        store = SQLiteStore(where)
    else:
        prefix = f"procs:{random.getrandbits(64):x}:"
        url = request.getfixturevalue("redis_url")
        where = f"{url}|{prefix}"
        store = closing(RedisStore(url, prefix=prefix))
    session = Session(SECRET, store=store)
    cookie = logged_in(session)
    context = multiprocessing.get_context("spawn")  # no state shared by a fork
    children = [
        context.Process(target=_child_writes, args=(store_kind, where, cookie, i))
        for i in range(4)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0, 0, 0, 0]
    _consistent(everything(session, cookie), 4, 25)
