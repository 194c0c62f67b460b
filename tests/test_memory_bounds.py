"""No per-process cache grows with what hostile clients send (issue 17).

The rule for the whole package: no memo keeps more than a small fixed number of
bytes per entry, and none grows without an eviction. Checked here in-process, with
tracemalloc, on a whole stack (access log, error pages, Gzip and Compress, basic
auth, sessions and static files): 2,000 requests, each carrying a unique 100 KB
value where a cache could keep it (a path under the static prefix, Accept-Encoding,
Accept on 401 and 500 pages, a session cookie), must leave the traced memory less
than 5 MiB larger. tests/test_wire.py checks the same over a real server's RSS.
"""

from __future__ import annotations

import gc
import itertools
import logging
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from middleware import (
    AccessLog,
    BasicAuth,
    Compress,
    ErrorCatcher,
    Gzip,
    Session,
    StaticFiles,
    compose,
)
from middleware.http import MEMO_KEY_LIMIT, _remembered, accepted_encodings
from middleware.static.table import MISS_MEMO_SIZE, MISS_PATH_LIMIT
from middleware.testing import make_environ, run
from middleware.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PAGE = b"<p>" + b"a page worth compressing " * 200 + b"</p>"
HUNDRED_KB = 100 * 1024


def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom")
    environ["middleware.session"]["seen"] = True
    start_response(
        "200 OK",
        [("Content-Type", "text/html"), ("Content-Length", str(len(PAGE)))],
    )
    return [PAGE]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[WSGIApplication, StaticFiles, Compress]]:
    (tmp_path / "app.css").write_bytes(b"body { color: red }\n" * 100)
    logger = logging.getLogger("tests.memory")
    logger.propagate = False
    logger.addHandler(logging.NullHandler())
    static = StaticFiles(tmp_path)
    compress = Compress()
    wsgi = compose(
        app,
        AccessLog(logger=logger),
        ErrorCatcher(),
        Gzip(),
        compress,
        BasicAuth(
            users={"ann": "plaintext:pw"},
            allow_plaintext=True,
            exempt=["/static", "/page", "/boom"],
        ),
        Session(secret="s" * 32),
        static,
    )
    errors = logging.getLogger("middleware.errors")
    level = errors.level
    errors.setLevel(logging.CRITICAL)  # 500 pages log their error: not measured
    try:
        yield wsgi, static, compress
    finally:
        errors.setLevel(level)


def unique(seed: int, alphabet: str) -> str:
    """A 100 KB value no other request sends."""
    head = f"{seed:08d}"
    return head + alphabet * ((HUNDRED_KB - len(head)) // len(alphabet))


# (name, what a request carries: the environ changes for the n-th request)
VECTORS: list[tuple[str, Callable[[int], dict[str, str]]]] = [
    ("static miss", lambda n: {"PATH_INFO": "/static/" + unique(n, "abcdefgh/")}),
    (
        "accept-encoding",
        lambda n: {"PATH_INFO": "/page", "HTTP_ACCEPT_ENCODING": unique(n, "gzip, ")},
    ),
    (
        "accept on a 401",
        lambda n: {
            "PATH_INFO": "/private/x",
            "HTTP_ACCEPT": unique(n, "text/html;q=0.9, "),
        },
    ),
    (
        "accept on a 500",
        lambda n: {
            "PATH_INFO": "/boom",
            "HTTP_ACCEPT": unique(n, "application/json, "),
        },
    ),
    (
        "cookie",
        lambda n: {"PATH_INFO": "/page", "HTTP_COOKIE": "session=" + unique(n, "Zm9v")},
    ),
]


def serve(wsgi: WSGIApplication, changes: dict[str, str]) -> str:
    environ = make_environ()
    environ.update(changes)
    served = run(wsgi, environ)
    assert served.error is None, served.error
    return served.status or ""


def traced_growth(work: Callable[[], None]) -> int:
    """Bytes of traced memory that *work* left allocated."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_unique_hostile_values_leave_no_memory_behind(
    stack: tuple[WSGIApplication, StaticFiles, Compress],
) -> None:
    wsgi, static, compress = stack
    statuses: dict[str, set[str]] = {}
    # Warm up: the first requests fill what is filled once (imports, pages).
    for _name, vector in VECTORS:
        serve(wsgi, vector(-1))
    _remembered.cache_clear()

    def work() -> None:
        for n, (name, vector) in zip(range(2000), itertools.cycle(VECTORS)):
            statuses.setdefault(name, set()).add(serve(wsgi, vector(n)))

    growth = traced_growth(work)
    assert growth < 5 * 1024 * 1024, f"{growth / 1e6:.1f} MB left behind"
    # The requests were answered, not refused early: each vector reached its cache.
    assert statuses == {
        "static miss": {"200 OK"},  # passed on to the app
        "accept-encoding": {"200 OK"},
        "accept on a 401": {"401 Unauthorized"},
        "accept on a 500": {"500 Internal Server Error"},
        "cookie": {"200 OK"},
    }
    assert all(len(path) <= MISS_PATH_LIMIT for path in static._table.misses)
    assert all(len(key or "") <= MEMO_KEY_LIMIT for key in compress._negotiated)


def test_the_memos_are_bounded_in_entries_and_in_bytes(
    stack: tuple[WSGIApplication, StaticFiles, Compress],
) -> None:
    """Short unique values are remembered, but never more than the memo's size."""
    wsgi, static, compress = stack
    for n in range(MISS_MEMO_SIZE + 100):
        serve(wsgi, {"PATH_INFO": f"/static/missing-{n}.css"})
        serve(
            wsgi,
            {
                "PATH_INFO": "/page",
                "HTTP_ACCEPT_ENCODING": f"gzip;q=0.{n % 999:03d}, x{n}",
            },
        )
    assert 0 < len(static._table.misses) <= MISS_MEMO_SIZE
    assert 0 < len(compress._negotiated) <= 512
    info = _remembered.cache_info()
    assert info.maxsize == 512 and info.currsize <= 512
    # A value past the memo's limit is still answered right, each time.
    long = "gzip;q=0.5, " + "x" * (MEMO_KEY_LIMIT + 10)
    assert accepted_encodings(long, ("gzip", "identity")) == ("gzip", "identity")
