"""StaticFiles against hostile input and a file system that changes under a running
server (issue 17).

The tables:

- ``HOSTILE_PATHS``: request paths that tests/test_static.py's TRAVERSAL table does
  not hold (double encoding, overlong UTF-8, fullwidth dots and slashes, 10 KB and
  100 KB paths, Windows names, streams and UNC forms, NUL, CR/LF, ``/./``, ``;``
  parameters, ``..`` after a symlink, a symlink loop), each answered 404, 403 or by
  the app, in scan and autorefresh modes, and never with the secret. Unicode forms
  are not normalised: a name is served only at the URL of its own bytes (an NFD
  request for an NFC file is the app's).
- ``FILE_SWAPS``: a served file (``data.json``, and the gzip variant of
  ``app.css``) replaced after the server started by a symlink out of the root, a
  FIFO, a directory, nothing, or a new regular file; and, deleted first, by a
  directory, a FIFO or a symlink to an outside file that got the deleted file's
  inode number (ext4 reuses freed numbers at once). The first request after the
  swap must not hang, raise or serve the secret. Beside the table: a file replaced
  or truncated while its body is sent, a thread swapping a path between an inside
  file and a symlink to the secret while requests run, and an OSError out of the
  containment check (a symlink loop, ``os.path.realpath`` raising).
- ``CONDITIONAL_AFTER_CHANGE``: If-None-Match, If-Modified-Since and HEAD for a
  file changed after the scan are judged against the file as it is now.
- The miss memo (``test_long_missing_paths_are_not_remembered``): thousands of
  100 KB missing paths cost no memory.

Requests go through the conformance kit (``get``), as in tests/test_static.py,
except where the first answer is what matters (the kit serves each request three
times): the first request after a swap, the race, the memo's thousands of requests
and the mid-response tests are served bare, as a server would.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import gzip
import os
import sys
import threading
import time
import tracemalloc
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from middleware import StaticFiles
from middleware import testing as conformance
from middleware.testing import Served
from middleware.wsgi import WSGIEnvironment
from tests.test_static import (
    CSS,
    SECRET,
    app,
    get,
    opened,  # noqa: F401 (a fixture)
    refused_inside,
    root,  # noqa: F401 (a fixture)
    server_path,
    write,
)

BLOCK = 65_536  # Body's block size when the server has no wsgi.file_wrapper


@pytest.fixture
def tree(root: Path) -> Path:  # noqa: F811
    """tests/test_static.py's tree, with a symlink loop and one more dotfile."""
    (root / "loop-a").symlink_to("loop-b")
    (root / "loop-b").symlink_to("loop-a")
    write(root / ".htpasswd", SECRET)  # its 8.3 name on Windows: HTPASS~1
    return root


def outside(directory: Path) -> Path:
    """The secret file next to the served *directory*, never to be served."""
    return directory.parent / "outside" / "secret.txt"


def stage(directory: Path) -> Path:
    """A directory beside the served *directory* (the same file system) to prepare
    swaps in."""
    path = directory.parent / "stage"
    path.mkdir(exist_ok=True)
    return path


# -- hostile paths -------------------------------------------------------------------

LONG_NAME = "a" * 100_000
HOSTILE_PATHS = [
    # Encoded twice: decoded once, a literal "%2e%2e%2f" names no file.
    pytest.param("/static/%252e%252e%252foutside%252fsecret.txt", "app", id="double-encoded-dotdot-slash"),  # noqa: E501
    pytest.param("/static/%252e%252e%255c%252e%252e%255coutside", "app", id="double-encoded-backslash"),  # noqa: E501
    pytest.param("/static/%25%32%65%25%32%65/outside/secret.txt", "app", id="double-encoded-digits"),  # noqa: E501
    pytest.param("/static/%u002e%u002e/outside/secret.txt", "app", id="iis-percent-u"),
    # Overlong UTF-8 for "." and "/": not UTF-8, so no name.
    pytest.param("/static/%c0%ae%c0%ae/outside/secret.txt", "app", id="overlong-2-byte-dot"),  # noqa: E501
    pytest.param("/static/%c0%ae%c0%ae%c0%afoutside%c0%afsecret.txt", "app", id="overlong-dot-and-slash"),  # noqa: E501
    pytest.param("/static/%e0%80%ae%e0%80%ae/outside/secret.txt", "app", id="overlong-3-byte-dot"),  # noqa: E501
    pytest.param("/static/sub%c0%afdeep%c0%affile.txt", "app", id="overlong-slash-inside"),  # noqa: E501
    pytest.param("/static/%c0%2e%c0%2e/outside/secret.txt", "app", id="truncated-overlong"),  # noqa: E501
    # Fullwidth "．．／" (U+FF0E, U+FF0F) are names like any other: never normalised.
    pytest.param("/static/%ef%bc%8e%ef%bc%8e%ef%bc%8foutside%ef%bc%8fsecret.txt", "app", id="fullwidth-dotdot-slash"),  # noqa: E501
    pytest.param("/static/%ef%bc%8e%ef%bc%8e/outside/secret.txt", "app", id="fullwidth-dotdot-segment"),  # noqa: E501
    pytest.param("/static/app%ef%bc%8ecss", "app", id="fullwidth-dot-in-name"),
    # Decomposed (NFD) "café.txt": the file's name is NFC, so no such file.
    pytest.param("/static/cafe%cc%81.txt", "app", id="nfd-request-for-nfc-file"),
    # Long paths: 10 KB and 100 KB of segments, a 100 KB name, 100 KB of "../".
    pytest.param("/static/" + "a/" * 5_000 + "app.css", "app", id="10KB-of-segments"),
    pytest.param("/static/" + "abcdefghi/" * 10_000, "app", id="100KB-of-segments"),
    pytest.param("/static/" + LONG_NAME, "app", id="100KB-name"),
    pytest.param("/static/" + "../" * 33_000 + "outside/secret.txt", 404, id="100KB-of-dotdot"),  # noqa: E501
    pytest.param("/static/sub/" + "%2e%2e%2f" * 3_000 + "outside/secret.txt", 404, id="27KB-of-encoded-dotdot"),  # noqa: E501
    # Windows: backslashes, 8.3 names, streams, devices, UNC.
    pytest.param("/static/app.css%5c..%5c..%5coutside%5csecret.txt", 404, id="backslash-after-name"),  # noqa: E501
    pytest.param("/static/sub%5cdeep%5cfile.txt", 404, id="backslash-inside-names"),
    pytest.param("/static/%5c%5cserver%5cshare%5csecret.txt", 404, id="unc-backslashes"),  # noqa: E501
    pytest.param("/static//server/share/secret.txt", 404, id="unc-slashes"),
    pytest.param("/static/%5c%5c%3f%5cC:%5csecret.txt", 404, id="win32-device-namespace"),  # noqa: E501
    pytest.param("/static/SECRET~1.TXT", "app", id="8.3-short-name"),
    pytest.param("/static/HTPASS~1", "app", id="8.3-name-of-a-dotfile"),
    pytest.param("/static/docs/index.html::$DATA", 404, id="default-stream"),
    pytest.param("/static/.env::$DATA", 404, id="stream-of-a-dotfile"),
    pytest.param("/static/app.css:hidden.txt:$DATA", 404, id="alternate-data-stream"),
    pytest.param("/static/docs::$INDEX_ALLOCATION/index.html", 404, id="directory-stream"),  # noqa: E501
    pytest.param("/static/CON.txt", 404, id="CON-with-extension"),
    pytest.param("/static/aux", 404, id="aux"),
    pytest.param("/static/sub/AUX.css", 404, id="AUX-in-a-directory"),
    pytest.param("/static/prn.tar.gz", 404, id="prn-double-extension"),
    pytest.param("/static/CONIN$", 404, id="CONIN$"),
    pytest.param("/static/com9%20%20.txt", 404, id="com9-with-spaces"),
    pytest.param("/static/app.css.", 404, id="trailing-dot-of-a-served-name"),
    pytest.param("/static/app.css....", 404, id="trailing-dots"),
    pytest.param("/static/docs./index.html", 404, id="trailing-dot-on-a-directory"),
    # NUL, CR and LF.
    pytest.param("/static/%00", 404, id="nul-alone"),
    pytest.param("/static/app.css%00", 404, id="nul-after-a-name"),
    pytest.param("/static/sub/%00deep/file.txt", 404, id="nul-before-a-directory"),
    pytest.param("/static/app.css%0d%0aSet-Cookie:%20a=1", 404, id="crlf-header-injection"),  # noqa: E501
    pytest.param("/static/%0d", 404, id="cr-alone"),
    pytest.param("/static/docs%0a/index.html", 404, id="lf-in-a-directory"),
    # Dot segments, mixed.
    pytest.param("/static/%2e", 404, id="encoded-dot"),
    pytest.param("/static/%2e%2e", 404, id="encoded-dotdot"),
    pytest.param("/static/sub/./deep/file.txt", 404, id="dot-segment-inside"),
    pytest.param("/static/sub/.%2fdeep/file.txt", 404, id="encoded-slash-after-dot"),
    pytest.param("/static/sub/deep/./../../app.css", 404, id="dot-then-dotdot"),
    pytest.param("/static/sub/deep/file.txt/.", 404, id="trailing-dot-segment"),
    # ";" path parameters are part of the name.
    pytest.param("/static/app.css;jsessionid=1", "app", id="path-parameter"),
    pytest.param("/static/app.css;.png", "app", id="path-parameter-extension"),
    pytest.param("/static/..;/outside/secret.txt", 403, id="dotdot-semicolon"),
    pytest.param("/static/sub;/../app.css", 404, id="parameter-then-dotdot"),
    # ".." after a symlink, and symlinks that end nowhere.
    pytest.param("/static/link-in.css/../outside/secret.txt", 404, id="dotdot-after-file-symlink"),  # noqa: E501
    pytest.param("/static/loop/../../outside/secret.txt", 404, id="dotdot-after-dir-symlink"),  # noqa: E501
    pytest.param("/static/linkdir-out/../static/app.css", 404, id="dotdot-after-link-out"),  # noqa: E501
    pytest.param("/static/linkdir-out/index.html", "app", id="index-behind-link-out"),
    pytest.param("/static/loop/loop/loop/link-out.txt", "app", id="link-out-behind-loops"),  # noqa: E501
    pytest.param("/static/loop-a", "app", id="symlink-loop"),
    pytest.param("/static/loop-a/app.css", "app", id="inside-a-symlink-loop"),
    pytest.param("/static/app.css/", "app", id="file-as-directory"),
]  # fmt: skip


@pytest.mark.parametrize("autorefresh", [False, True], ids=["scan", "autorefresh"])
@pytest.mark.parametrize(("url", "expected"), HOSTILE_PATHS)
def test_hostile_paths(
    tree: Path,
    opened: list[str],  # noqa: F811
    url: str,
    expected: int | str,
    autorefresh: bool,
) -> None:
    static = StaticFiles(tree, autorefresh=autorefresh)
    outcome = refused_inside(static, tree, opened, url, expected)
    # Asked again (scan mode: perhaps from the memo), the same answer.
    assert get(static, server_path(url)).status == outcome.status


@pytest.mark.parametrize("autorefresh", [False, True], ids=["scan", "autorefresh"])
def test_unicode_forms_name_files_byte_for_byte(root: Path, autorefresh: bool) -> None:  # noqa: F811
    """No normalisation: NFC and NFD names are different names, each served at its
    own URL only (as the file system, ext4 or tmpfs, sees them)."""
    nfd = unicodedata.normalize("NFD", "naïve.txt")
    write(root / nfd, b"nfd on disk")
    assert "café.txt" in os.listdir(root)  # NFC on disk (the fixture's)
    assert unicodedata.is_normalized("NFC", "café.txt")
    static = StaticFiles(root, autorefresh=autorefresh)

    def url(name: str) -> str:
        return server_path("/static/" + quote(name))

    assert get(static, url(unicodedata.normalize("NFC", "café.txt"))).body == (
        "café".encode()
    )
    assert get(static, url(unicodedata.normalize("NFD", "café.txt"))).body == b"app"
    assert get(static, url(nfd)).body == b"nfd on disk"
    assert get(static, url(unicodedata.normalize("NFC", nfd))).body == b"app"
    # Compatibility forms are not folded either: "ﬁ" (U+FB01) is not "fi".
    write(root / "fi.txt", b"fi")
    static = StaticFiles(root, autorefresh=autorefresh)
    assert get(static, url("\ufb01.txt")).body == b"app"


# -- files that change under a running server ------------------------------------------


def to_symlink_out(path: Path) -> None:
    """Replaced by a symlink to the secret next to the root."""
    link = stage(path.parent) / "link"
    link.symlink_to(outside(path.parent))
    os.replace(link, path)


def to_fifo(path: Path) -> None:
    """Replaced by a FIFO (opening it for reading waits for a writer)."""
    fifo = stage(path.parent) / "fifo"
    os.mkfifo(fifo)
    os.replace(fifo, path)


def to_directory(path: Path) -> None:
    """Replaced by an empty directory (made first: another inode)."""
    directory = stage(path.parent) / "directory"
    directory.mkdir()
    path.unlink()
    directory.rename(path)


def deleted(path: Path) -> None:
    path.unlink()


def reusing_inode(path: Path, where: Path, make: Callable[[Path], object]) -> Path:
    """*path* deleted, then things made by *make* in *where* (all kept) until one
    has the inode number *path* had: ext4 hands a freed number out again at once,
    almost always. That one (or, failing that, the last) is returned."""
    inode = path.stat().st_ino
    path.unlink()
    for attempt in range(50):
        made = where / f"reused-{attempt}"
        make(made)
        if made.lstat().st_ino == inode:
            break
    return made


def to_directory_same_inode(path: Path) -> None:
    """Replaced by an empty directory with the file's old inode number."""
    reusing_inode(path, path.parent, os.mkdir).rename(path)


def to_fifo_same_inode(path: Path) -> None:
    """Replaced by a FIFO with the file's old inode number."""
    reusing_inode(path, path.parent, os.mkfifo).rename(path)


def to_symlink_out_same_inode(path: Path) -> None:
    """Replaced by a symlink to a secret file made outside the root after the
    file was deleted, which got the file's old inode number."""
    secret = reusing_inode(path, path.parent.parent, lambda p: write(p, SECRET))
    path.symlink_to(secret)


NEW_CONTENT = {
    "data.json": b'{"a": 1, "new": true}',
    "app.css.gz": gzip.compress(CSS + b"/* new */\n", mtime=0),
}


def to_new_file(path: Path) -> None:
    """Replaced by a new regular file (another inode, size and mtime)."""
    new = stage(path.parent) / "new"
    new.write_bytes(NEW_CONTENT[path.name])
    st = path.stat()
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))
    os.replace(new, path)


SWAPS: dict[str, Callable[[Path], None]] = {
    "symlink-out": to_symlink_out,
    "fifo": to_fifo,
    "directory": to_directory,
    "deleted": deleted,
    "new-file": to_new_file,
    "directory-same-inode": to_directory_same_inode,
    "fifo-same-inode": to_fifo_same_inode,
    "symlink-out-same-inode": to_symlink_out_same_inode,
}

# (the file swapped, the URL, Accept-Encoding, the swap, what is served after it:
# "app" (passed on), "identity" (app.css itself) or "new" (the new file)).
FILE_SWAPS = [
    pytest.param("data.json", "/static/data.json", None, swap, expected, id=f"data.json-{swap}")  # noqa: E501
    for swap, expected in [
        ("symlink-out", "app"),
        ("fifo", "app"),
        ("directory", "app"),
        ("deleted", "app"),
        ("new-file", "new"),
        # The deleted file's inode number reused (ext4 hands it to the next file):
        # the inode alone did not tell the scanned file from the new one.
        ("directory-same-inode", "app"),  # was: IsADirectoryError
        ("fifo-same-inode", "app"),  # was: the FIFO served, an empty 200
        ("symlink-out-same-inode", "app"),  # was: the secret served
    ]
] + [
    pytest.param("app.css.gz", "/static/app.css", "gzip", swap, expected, id=f"gzip-variant-{swap}")  # noqa: E501
    for swap, expected in [
        ("symlink-out", "identity"),
        ("fifo", "identity"),
        ("directory", "identity"),
        ("deleted", "identity"),
        ("new-file", "new"),
        # The inode number reused, as above.
        ("directory-same-inode", "identity"),
        ("fifo-same-inode", "identity"),
        ("symlink-out-same-inode", "identity"),  # was: the secret, as gzip
    ]
]  # fmt: skip


def serve(static: StaticFiles, url: str, headers: dict[str, str]) -> Served:
    """One GET, served bare as a server would: the first request after a swap is
    the one that matters (the kit's three runs would hide what the first got)."""
    environ = conformance.make_environ("GET", url)
    environ.update(headers)
    return conformance.run(static(app), environ)


def in_time(request: Callable[[], Served], fifo: Path, seconds: float = 2.0) -> Served:
    """*request*'s outcome, run in a thread that must end within *seconds*. A
    thread stuck opening *fifo* for reading is let go (a writer opens and closes
    it) before the test fails, so that the test process can end."""
    box: list[Served | BaseException] = []

    def target() -> None:
        try:
            box.append(request())
        except BaseException as exc:  # reported by the main thread
            box.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    hung = thread.is_alive()
    deadline = time.monotonic() + 10
    while thread.is_alive() and time.monotonic() < deadline:
        with contextlib.suppress(OSError):  # no reader waiting, or not a FIFO
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(0.01)
    assert not hung, f"the request did not end within {seconds} s (a FIFO opened?)"
    result = box[0]
    if isinstance(result, BaseException):
        raise result
    return result


@pytest.mark.parametrize("autorefresh", [False, True], ids=["scan", "autorefresh"])
@pytest.mark.parametrize(("name", "url", "accept", "swap", "expected"), FILE_SWAPS)
def test_file_swaps(
    root: Path,  # noqa: F811
    name: str,
    url: str,
    accept: str | None,
    swap: str,
    expected: str,
    autorefresh: bool,
) -> None:
    static = StaticFiles(root, autorefresh=autorefresh)
    headers = {} if accept is None else {"HTTP_ACCEPT_ENCODING": accept}
    before = get(static, url, extra=headers)
    assert before.body == (root / name).read_bytes()
    SWAPS[swap](root / name)
    outcome = in_time(lambda: serve(static, url, headers), root / name)
    assert SECRET not in outcome.body
    assert outcome.error is None, repr(outcome.error)
    assert outcome.status == "200 OK"
    assert outcome.header("Content-Length") == str(len(outcome.body))
    if expected == "app":
        assert outcome.body == b"app"
    elif expected == "identity":
        assert outcome.body == CSS
        assert outcome.header("Content-Encoding") is None
    else:
        assert outcome.body == NEW_CONTENT[name]
        assert outcome.header("Content-Length") == str(len(NEW_CONTENT[name]))
        assert outcome.header("ETag") not in (None, before.header("ETag"))
        assert outcome.header("Content-Encoding") == before.header("Content-Encoding")
        # The same as a server started after the change says.
        fresh = get(StaticFiles(root, autorefresh=autorefresh), url, extra=headers)
        assert outcome.headers == fresh.headers
    # And the next request too (scan mode: from the updated table), through the kit.
    again = in_time(lambda: get(static, url, extra=headers), root / name)
    assert (again.status, again.body) == (outcome.status, outcome.body)


@pytest.mark.parametrize("autorefresh", [False, True], ids=["scan", "autorefresh"])
def test_a_swap_out_of_the_root_is_404_without_fallthrough(
    root: Path,  # noqa: F811
    autorefresh: bool,
) -> None:
    static = StaticFiles(root, autorefresh=autorefresh, fallthrough=False)
    assert get(static, "/static/data.json").body == b'{"a": 1}'
    to_symlink_out(root / "data.json")
    outcome = serve(static, "/static/data.json", {})
    assert outcome.status == "404 Not Found"
    assert SECRET not in outcome.body
    assert get(static, "/static/data.json").status == "404 Not Found"


def start(
    static: StaticFiles, path: str
) -> tuple[dict[str, str], Iterable[bytes], list[str]]:
    """A GET through a server without wsgi.file_wrapper, not yet iterated: the
    headers, the body iterable, the status."""
    environ: WSGIEnvironment = conformance.make_environ("GET", path)
    del environ["wsgi.file_wrapper"]
    status: list[str] = []
    headers: dict[str, str] = {}

    def start_response(
        line: str, response_headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        status.append(line)
        headers.update(response_headers)
        return lambda data: None

    body = static(app)(environ, start_response)
    return headers, body, status


def close(body: Iterable[bytes]) -> None:
    closer = getattr(body, "close", None)
    if closer is not None:
        closer()


@pytest.mark.parametrize("autorefresh", [False, True], ids=["scan", "autorefresh"])
def test_a_file_replaced_mid_response_is_sent_as_it_was_opened(
    root: Path,  # noqa: F811
    autorefresh: bool,
) -> None:
    old = os.urandom(1 << 20)
    new = os.urandom(len(old) // 2)
    big = write(root / "big.bin", old)
    static = StaticFiles(root, autorefresh=autorefresh)
    headers, body, status = start(static, "/static/big.bin")
    try:
        chunks = iter(body)
        first = next(chunks)
        assert status == ["200 OK"] and len(first) == BLOCK
        replacement = write(stage(root) / "big.bin", new)
        os.utime(replacement, ns=(0, big.stat().st_mtime_ns + 10**9))
        os.replace(replacement, big)
        sent = first + b"".join(chunks)
    finally:
        close(body)
    assert sent == old  # complete and consistent: the open handle's inode
    assert headers["Content-Length"] == str(len(old))
    after = get(static, "/static/big.bin")
    assert after.body == new
    assert after.header("Content-Length") == str(len(new))
    assert after.header("ETag") != headers["ETag"]


@pytest.mark.parametrize("autorefresh", [False, True], ids=["scan", "autorefresh"])
def test_a_file_truncated_mid_response_ends_it_with_an_error(
    root: Path,  # noqa: F811
    autorefresh: bool,
) -> None:
    """Not a short body presented as complete: the iterable raises, so the server
    drops the connection before the Content-Length it sent is reached."""
    big = write(root / "big.bin", os.urandom(1 << 20))
    static = StaticFiles(root, autorefresh=autorefresh)
    headers, body, _ = start(static, "/static/big.bin")
    received: list[bytes] = []
    try:
        chunks = iter(body)
        received.append(next(chunks))
        os.truncate(big, 100_000)
        with pytest.raises(OSError, match="ended .* bytes early"):
            for chunk in chunks:
                received.append(chunk)
    finally:
        close(body)
    assert sum(map(len, received)) == 100_000 < int(headers["Content-Length"])


# Long enough for the old code to leak (tens of times in autorefresh mode; once in
# scan mode, which then forgets the file).
RACE_SECONDS = {False: 1.0, True: 2.0}


@pytest.mark.parametrize("autorefresh", [False, True], ids=["scan", "autorefresh"])
def test_a_path_swapped_to_a_symlink_out_while_requests_run(
    root: Path,  # noqa: F811
    autorefresh: bool,
) -> None:
    """A thread swaps swap.txt between an inside file (always the same inode, a
    hard link) and a symlink to the secret; requests meanwhile get the inside file
    or the app, never the secret, and none raises or leaves a file open."""
    inside = b"inside " * 100
    staged = stage(root)
    original = write(staged / "inside.txt", inside)
    served = root / "swap.txt"
    os.link(original, served)
    static = StaticFiles(root, autorefresh=autorefresh)
    handler = static(app)
    secret = outside(root)
    stop = threading.Event()
    swaps = 0

    def swapper() -> None:
        nonlocal swaps
        link, hard = staged / "link", staged / "hard"
        while not stop.is_set():
            os.symlink(secret, link)
            os.replace(link, served)
            os.link(original, hard)
            os.replace(hard, served)
            swaps += 1

    descriptors = len(os.listdir("/proc/self/fd"))
    thread = threading.Thread(target=swapper, daemon=True)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # interleave the swaps with the requests finely
    thread.start()
    leaks = errors = requests = 0
    bodies: set[bytes] = set()
    try:
        deadline = time.monotonic() + RACE_SECONDS[autorefresh]
        while time.monotonic() < deadline:
            outcome = conformance.run(
                handler, conformance.make_environ("GET", "/static/swap.txt")
            )
            requests += 1
            if SECRET in outcome.body:
                leaks += 1
            if outcome.error is not None or outcome.status != "200 OK":
                errors += 1
            else:
                assert outcome.header("Content-Length") == str(len(outcome.body))
            bodies.add(outcome.body)
    finally:
        stop.set()
        thread.join(5)
        sys.setswitchinterval(interval)
    assert not thread.is_alive()
    # Enough of both to have raced: on a loaded machine the swapper may get few
    # turns, so the bar is low; the old code leaked within a few dozen swaps.
    assert swaps > 20 and requests > 100, (swaps, requests)
    assert leaks == 0, f"{leaks} of {requests} responses held the secret"
    assert errors == 0, f"{errors} of {requests} requests raised or failed"
    assert bodies <= {inside, b"app"}, {b[:20] for b in bodies}
    assert len(os.listdir("/proc/self/fd")) <= descriptors


def realpath_failing_on(monkeypatch: pytest.MonkeyPatch, marker: str) -> None:
    """os.path.realpath made to raise OSError for names holding *marker*."""
    real = os.path.realpath

    def realpath(path: Any, *args: Any, **kwargs: Any) -> str:
        name = os.fsdecode(path)
        if marker in name:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name)
        return str(real(path, *args, **kwargs))

    monkeypatch.setattr(os.path, "realpath", realpath)


@pytest.mark.parametrize("autorefresh", [False, True], ids=["scan", "autorefresh"])
def test_an_oserror_from_the_containment_check_is_a_miss(
    tree: Path, monkeypatch: pytest.MonkeyPatch, autorefresh: bool
) -> None:
    """A file whose real path cannot be resolved is not served: the app (or 404)
    answers, and nothing raises."""
    write(tree / "victim.txt", b"victim")
    (tree / "victim-link.css").symlink_to("app.css")
    static = StaticFiles(tree, autorefresh=autorefresh)
    strict = StaticFiles(tree, autorefresh=autorefresh, fallthrough=False)
    assert get(static, "/static/victim.txt").body == b"victim"
    assert get(static, "/static/victim-link.css").body == CSS
    # A natural loop: a -> b, b -> a.
    assert get(static, "/static/loop-a").body == b"app"
    assert get(strict, "/static/loop-b").status == "404 Not Found"

    realpath_failing_on(monkeypatch, "victim")
    os.replace(write(stage(tree) / "victim.txt", b"victim, again"), tree / "victim.txt")
    if autorefresh:
        # Looked up on disk: realpath raises in the containment check.
        assert get(strict, "/static/victim.txt").status == "404 Not Found"
        assert get(static, "/static/victim.txt").body == b"app"
    else:
        # Replaced since the scan (another inode): checked again on what the
        # opened descriptor names, which needs no realpath, so it is served.
        assert get(strict, "/static/victim.txt").body == b"victim, again"
    # A server started now: the scan checks the symlink and leaves it out (and the
    # construction does not raise).
    scanned = StaticFiles(tree, autorefresh=autorefresh)
    assert get(scanned, "/static/victim-link.css").body == b"app"
    assert get(scanned, "/static/app.css").body == CSS


# -- conditional requests after a change (scan mode) ----------------------------------

NEW_DATA = b'{"a": 1, "b": 22}'
NEW_GZIP = gzip.compress(CSS + b"/* v2 */\n", mtime=0)


def grown(path: Path, st: os.stat_result) -> None:
    """New content of another size, and an mtime 10 s later."""
    path.write_bytes(NEW_DATA if path.name == "data.json" else NEW_GZIP)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10 * 10**9))


def same_size(path: Path, st: os.stat_result) -> None:
    """New content of the same size, and an mtime 1 µs later (the same second: the
    same Last-Modified)."""
    if path.name == "data.json":
        path.write_bytes(b'{"a": 2}')
    else:
        path.write_bytes(gzip.compress(CSS, mtime=12345))  # another header
    assert path.stat().st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000))


def touched(path: Path, st: os.stat_result) -> None:
    """The same content, an mtime 10 s later."""
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10 * 10**9))


CHANGES: dict[str, Callable[[Path, os.stat_result], None]] = {
    "grown": grown,
    "same-size": same_size,
    "touched": touched,
}

# (the file changed, Accept-Encoding, the change, the request: method and the
# conditional header, with the old validators). Each answer must be a 200 with the
# file as it is now.
CONDITIONAL_AFTER_CHANGE = [
    pytest.param(name, accept, change, method, condition, id=f"{label}-{change}-{method}-{condition}")  # noqa: E501
    for name, accept, label in [
        ("data.json", None, "data.json"),
        ("app.css.gz", "gzip", "gzip-variant"),
    ]
    for change, method, condition in [
        ("grown", "GET", "if-none-match-old-tag"),
        ("same-size", "GET", "if-none-match-old-tag"),
        ("touched", "GET", "if-none-match-old-tag"),
        ("grown", "GET", "if-none-match-old-tag-weak"),
        ("same-size", "GET", "if-none-match-list-with-old-tag"),
        ("touched", "GET", "if-modified-since-old-date"),
        ("grown", "GET", "if-modified-since-old-date"),
        ("grown", "HEAD", "none"),
        ("same-size", "HEAD", "none"),
        ("touched", "HEAD", "none"),
        ("grown", "HEAD", "if-none-match-old-tag"),
    ]
]  # fmt: skip


def conditional(condition: str, etag: str, modified: str) -> dict[str, str]:
    return {
        "none": {},
        "if-none-match-old-tag": {"HTTP_IF_NONE_MATCH": etag},
        "if-none-match-old-tag-weak": {"HTTP_IF_NONE_MATCH": f"W/{etag}"},
        "if-none-match-list-with-old-tag": {"HTTP_IF_NONE_MATCH": f'"x", {etag}'},
        "if-modified-since-old-date": {"HTTP_IF_MODIFIED_SINCE": modified},
    }[condition]


@pytest.mark.parametrize(
    ("name", "accept", "change", "method", "condition"), CONDITIONAL_AFTER_CHANGE
)
def test_conditional_requests_after_a_change(
    root: Path,  # noqa: F811
    name: str,
    accept: str | None,
    change: str,
    method: str,
    condition: str,
) -> None:
    # Every file half a second into a second two hours ago: +1 µs stays in it.
    past = (int(time.time()) - 7200) * 10**9 + 500_000_000
    for file in ("app.css", "app.css.gz", "app.css.br", "app.css.zst", "data.json"):
        os.utime(root / file, ns=(past, past))
    url = "/static/app.css" if name == "app.css.gz" else f"/static/{name}"
    extra = {} if accept is None else {"HTTP_ACCEPT_ENCODING": accept}
    static = StaticFiles(root)
    old = get(static, url, extra=extra)
    old_etag, old_modified = old.header("ETag") or "", old.header("Last-Modified")
    identity_etag = get(static, "/static/app.css").header("ETag") or ""
    assert old_etag and old_modified
    assert old.body == (root / name).read_bytes()

    CHANGES[change](root / name, (root / name).stat())
    fresh = get(StaticFiles(root), url, method="HEAD", extra=extra)  # the truth
    assert fresh.header("ETag") != old_etag
    headers = {**extra, **conditional(condition, old_etag, old_modified)}
    outcome = get(static, url, method=method, extra=headers)
    assert outcome.status == "200 OK"
    assert outcome.headers == fresh.headers  # the new Content-Length and ETag
    assert outcome.body == (b"" if method == "HEAD" else (root / name).read_bytes())

    # The new validators get 304s.
    new_etag = fresh.header("ETag") or ""
    again = get(static, url, extra={**extra, "HTTP_IF_NONE_MATCH": new_etag})
    assert again.status == "304 Not Modified"
    assert again.header("ETag") == new_etag
    new_modified = fresh.header("Last-Modified") or ""
    again = get(static, url, extra={**extra, "HTTP_IF_MODIFIED_SINCE": new_modified})
    assert again.status == "304 Not Modified"
    if name == "app.css.gz":  # the identity file did not change
        same = get(static, "/static/app.css", HTTP_IF_NONE_MATCH=identity_etag)
        assert same.status == "304 Not Modified"


# -- the miss memo -------------------------------------------------------------------


def test_long_missing_paths_are_not_remembered(root: Path) -> None:  # noqa: F811
    """2,000 missing paths of 100 KB: the memo of misses keeps none of them (it
    would hold 200 MB), and still remembers short ones."""
    static = StaticFiles(root)
    handler = static(app)

    def request(path: str) -> bytes:
        return conformance.run(handler, conformance.make_environ("GET", path)).body

    assert get(static, "/static/missing-" + "x" * 100_000).body == b"app"  # warm up
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        answers = set()
        for n in range(2_000):
            answers.add(request(f"/static/missing-{n:04d}-" + "x" * 100_000))
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answers == {b"app"}
    assert after - before < 1 << 20, f"{(after - before) / 2**20:.1f} MiB kept"

    from middleware.static.table import MISS_PATH_LIMIT

    assert request("/static/short-miss.css") == b"app"
    at_limit = "/static/" + "y" * (MISS_PATH_LIMIT - len("/static/"))
    assert request(at_limit) == b"app" and request(at_limit + "y") == b"app"
    misses = static._table.misses
    assert "/static/short-miss.css" in misses and at_limit in misses
    assert max(map(len, misses)) <= MISS_PATH_LIMIT


# -- races a review found: the checks must look at the opened file, not the path ------


@pytest.mark.parametrize("autorefresh", [False, True], ids=["scan", "autorefresh"])
def test_a_swap_timed_around_the_path_checks_cannot_serve_the_outside(
    tree: Path, monkeypatch: pytest.MonkeyPatch, autorefresh: bool
) -> None:
    """The writer's best schedule, made deterministic: the served path is a
    symlink out, except while ``os.path.realpath`` looks at it. A check that
    resolves the path again after the open (not what the descriptor names) was
    fooled in both modes and served the secret."""
    served = tree / "swapped.txt"
    write(served, b"first version")
    inside = write(stage(tree) / "inside.txt", b"inside")
    static = StaticFiles(tree, autorefresh=autorefresh, fallthrough=False)
    secret = outside(tree)

    def to_symlink() -> None:
        link = stage(tree) / "link"
        link.symlink_to(secret)
        os.replace(link, served)

    def to_regular() -> None:
        hard = stage(tree) / "hard"
        os.link(inside, hard)
        os.replace(hard, served)

    real = os.path.realpath

    def swapping(path: Any, *args: Any, **kwargs: Any) -> str:
        if os.fsdecode(path).endswith("swapped.txt"):
            to_regular()
            try:
                return str(real(path, *args, **kwargs))
            finally:
                to_symlink()
        return str(real(path, *args, **kwargs))

    to_symlink()
    monkeypatch.setattr(os.path, "realpath", swapping)
    for method in ("GET", "HEAD"):
        outcome = conformance.run(
            static(app), conformance.make_environ(method, "/static/swapped.txt")
        )
        assert SECRET not in outcome.body
        assert outcome.status == "404 Not Found", (method, outcome.status)
        # Not even the secret file's size.
        assert outcome.header("Content-Length") != str(len(SECRET))


def test_a_file_deleted_and_made_again_is_served_again(tree: Path) -> None:
    """A deploy that deletes a file and writes it again (rm + cp, git checkout):
    a revalidation between the two steps found it gone, and the path was then
    remembered as a miss until the process restarted."""
    static = StaticFiles(tree, fallthrough=False)
    first = get(static, "/static/data.json")
    tag = first.header("ETag")
    assert first.status == "200 OK" and tag is not None
    (tree / "data.json").unlink()
    gone = conformance.run(
        static(app),
        {
            **conformance.make_environ("GET", "/static/data.json"),
            "HTTP_IF_NONE_MATCH": tag,
        },
    )
    assert gone.status == "404 Not Found"
    write(tree / "data.json", b'{"deployed": true}')
    again = get(static, "/static/data.json")
    assert (again.status, again.body) == ("200 OK", b'{"deployed": true}')
    assert get(static, "/static/data.json", method="HEAD").status == "200 OK"
    assert "/static/data.json" not in static._table.misses
