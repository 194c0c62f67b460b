"""StaticFiles: the conformance kit, hostile paths, conditional requests, ranges,
HEAD, encoding variants, headers, directories, symlinks and files that change.

Every served response goes through ``conformance.answered``: wsgiref's validator,
Werkzeug's lint and a bare run must agree, lengths must be exact and no file
descriptor may stay open. An audit hook records every file the process opens, so
the traversal table can show that nothing outside the root was touched.
"""

from __future__ import annotations

import email.utils
import gzip
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest

from middleware import StaticFiles
from middleware import testing as conformance
from middleware.static import HASHED_NAME, MAX_RANGES, content_type, parse_ranges
from middleware.testing import Served, Subject
from middleware.wsgi import StartResponse, WSGIEnvironment

CSS = b"".join(b".c%d { color: #%03x; }\n" % (i, i * 37 % 4096) for i in range(60))
SECRET = b"SECRET: never served"

# -- every file this process opens, for the traversal table ----------------------------

OPENED: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if OPENED is not None and event == "open" and isinstance(args[0], str | bytes):
        OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@pytest.fixture
def opened() -> Iterator[list[str]]:
    global OPENED
    OPENED = []
    try:
        yield OPENED
    finally:
        OPENED = None


# -- the tree ---------------------------------------------------------------------


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A directory to serve, next to a secret one that must never be served."""
    write(tmp_path / "outside" / "secret.txt", SECRET)
    write(tmp_path / "outside" / "index.html", SECRET)
    write(tmp_path / "static-secret" / "index.html", SECRET)
    root = tmp_path / "static"
    write(root / "app.css", CSS)
    write(root / "app.css.gz", gzip.compress(CSS, mtime=0))
    # Stand-ins: the middleware never decodes a variant, it only picks one by size.
    write(root / "app.css.br", b"BR" * 100)
    write(root / "app.css.zst", b"ZS" * 150)
    write(root / "logo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    write(root / "archive.tar.gz", gzip.compress(b"a tar file", mtime=0))
    write(root / "app.3f9a1c2b.js", b"console.log(1)\n")
    write(root / "data.json", b'{"a": 1}')
    write(root / "README", b"no extension")
    write(root / "empty.txt", b"")
    write(root / "café.txt", "café".encode())
    write(root / "docs" / "index.html", b"<h1>docs</h1>")
    write(root / "docs" / "page.html", b"<h1>page</h1>")
    write(root / "sub" / "deep" / "file.txt", b"deep")
    (root / "noindex").mkdir()
    write(root / "noindex" / "x.txt", b"x")
    write(root / ".env", SECRET)
    write(root / ".git" / "config", SECRET)
    write(root / ".well-known" / "security.txt", b"Contact: mailto:sec@example.org")
    write(root / "CON", SECRET)  # a device name on Windows: never served
    write(root / "dir" / "NUL.txt", SECRET)
    write(root / "trailing.", SECRET)
    (root / "link-in.css").symlink_to("app.css")
    (root / "link-out.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    (root / "linkdir-out").symlink_to(tmp_path / "outside")
    (root / "loop").symlink_to(root)
    os.mkfifo(root / "fifo")
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    (root / "data.json.gz").symlink_to(tmp_path / "outside" / "secret.txt")
    write(Path(os.fsdecode(bytes(root) + b"/\xff.txt")), SECRET)  # not UTF-8
    return root


def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"app"]


def get(
    static: StaticFiles,
    path: str,
    *,
    method: str = "GET",
    same_body: bool = True,
    extra: Mapping[str, str] | None = None,
    **headers: str,
) -> Served:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, **(extra or {}), **headers}
    return conformance.answered(Subject("static", static), app, environ, same_body)


def header(outcome: Served, name: str) -> str | None:
    return outcome.header(name)


# -- the conformance kit -----------------------------------------------------------

KIT_ROOT = Path(__file__).parent / "fixtures" / "static"

test_conformance = conformance.suite(
    Subject("static", StaticFiles(KIT_ROOT)),
    Subject("static-at-root", StaticFiles(KIT_ROOT, prefix="/", index=None)),
    Subject("static-autorefresh", StaticFiles(KIT_ROOT, autorefresh=True)),
)


# -- hostile paths ------------------------------------------------------------------

# (URL path as the client sent it, the status, and "app" when the app answers)
TRAVERSAL = [
    ("/static/../outside/secret.txt", 404),
    ("/static/%2e%2e/outside/secret.txt", 404),
    ("/static/%2e%2e%2foutside%2fsecret.txt", 404),
    ("/static/..%2f..%2foutside/secret.txt", 404),
    ("/static/..%5coutside%5csecret.txt", 404),
    ("/static/sub\\..\\..\\outside\\secret.txt", 404),
    ("/static/app.css%00.png", 404),
    ("/static/app.css%0a", 404),
    ("/static//etc/passwd", 404),
    ("/static/%2fetc/passwd", 404),
    ("/static/C:/Windows/win.ini", 404),
    ("/static/C:secret.txt", 404),
    ("/static/app.css::$DATA", 404),
    ("/static/CON", 404),
    ("/static/con.txt", 404),
    ("/static/dir/NUL", 404),
    ("/static/dir/NUL.txt", 404),
    ("/static/COM1%20.txt", 404),
    ("/static/lpt%C2%B9", 404),
    ("/static/trailing.", 404),
    ("/static/app.css%20", 404),
    ("/static/./app.css", 404),
    ("/static/sub/../app.css", 404),
    ("/static/sub/deep/../../../outside/secret.txt", 404),
    ("/static/%252e%252e/outside/secret.txt", "app"),  # a literal "%2e%2e" name
    ("/static/link-out.txt", "app"),  # a symlink out of the root is not served
    ("/static/linkdir-out/secret.txt", "app"),
    ("/static/linkdir-out/", "app"),
    ("/static/../static-secret/", 404),
    ("/static-secret/index.html", "app"),  # not under the prefix
    ("/staticx/app.css", "app"),
    ("/static/.env", 403),
    ("/static/.git/config", 403),
    ("/static/sub/.env", 403),
    ("/static/.well-known/../.env", 404),
    ("/static/fifo", "app"),  # never opened: it would hang
    ("/static/%ff%fe.txt", "app"),  # not UTF-8: names no file
    ("/static/%ff.txt", "app"),
    ("/static/dangling", "app"),
]  # fmt: skip


def server_path(url: str) -> str:
    """PATH_INFO as a server makes it: percent-decoded once, bytes as latin-1."""
    return unquote_to_bytes(url).decode("latin-1")


@pytest.mark.parametrize("autorefresh", [False, True], ids=["scan", "autorefresh"])
@pytest.mark.parametrize(("url", "expected"), TRAVERSAL)
def test_hostile_paths_are_refused_without_touching_the_outside(
    root: Path, opened: list[str], url: str, expected: int | str, autorefresh: bool
) -> None:
    refused_inside(
        StaticFiles(root, autorefresh=autorefresh), root, opened, url, expected
    )


def refused_inside(
    static: StaticFiles, root: Path, opened: list[str], url: str, expected: int | str
) -> Served:
    """Request *url*: *expected* ("app": passed on, else a status) comes back, the
    secret never does, and no file outside *root* nor a dotfile is opened."""
    opened.clear()
    outcome = get(static, server_path(url))
    if expected == "app":
        assert (outcome.status, outcome.body) == ("200 OK", b"app")
    else:
        assert outcome.status.startswith(str(expected)), outcome.status
    assert SECRET not in outcome.body
    near = [p for p in opened if p.startswith(str(root.parent) + os.sep)]
    inside = str(root) + os.sep
    assert all(p.startswith(inside) and "/." not in p for p in near), near
    return outcome


@pytest.mark.parametrize("url", [row[0] for row in TRAVERSAL if row[1] != "app"])
def test_hostile_paths_never_reach_the_app(root: Path, url: str) -> None:
    outcome = get(StaticFiles(root, fallthrough=True), server_path(url))
    assert outcome.body != b"app"


def test_follow_symlinks_serves_links_out(root: Path) -> None:
    static = StaticFiles(root, follow_symlinks=True)
    assert get(static, "/static/link-out.txt").body == SECRET
    assert get(static, "/static/linkdir-out/secret.txt").body == SECRET


def test_symlinks_inside_are_served_and_loops_end(root: Path) -> None:
    static = StaticFiles(root)
    assert get(static, "/static/link-in.css").body == CSS
    assert get(static, "/static/loop/app.css").body == b"app"  # not scanned


def test_dotfiles_policies(root: Path) -> None:
    ignore = StaticFiles(root, dotfiles="ignore")
    assert get(ignore, "/static/.env").body == b"app"
    assert get(ignore, "/static/.well-known/security.txt").status == "200 OK"
    allow = StaticFiles(root, dotfiles="allow")
    assert get(allow, "/static/.env").body == SECRET
    deny = StaticFiles(root)
    outcome = get(deny, "/static/.well-known/security.txt")
    assert outcome.body.startswith(b"Contact:")
    assert get(deny, "/static/.well-known/.hidden").status == "403 Forbidden"


def test_non_ascii_names(root: Path) -> None:
    path = server_path("/static/caf%C3%A9.txt")
    assert path == "/static/cafÃ©.txt"
    assert get(StaticFiles(root), path).body == "café".encode()
    assert get(StaticFiles(root, autorefresh=True), path).body == "café".encode()


# -- methods and HEAD ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_405(root: Path, method: str) -> None:
    outcome = get(StaticFiles(root), "/static/app.css", method=method)
    assert outcome.status == "405 Method Not Allowed"
    assert header(outcome, "Allow") == "GET, HEAD"
    # A path with no file is the app's, whatever the method.
    assert get(StaticFiles(root), "/static/upload", method=method).body == b"app"


HEAD_CASES = [
    ("/static/app.css", {}, "200 OK"),
    ("/static/app.css", {"HTTP_ACCEPT_ENCODING": "gzip"}, "200 OK"),
    ("/static/app.css", {"HTTP_RANGE": "bytes=0-9"}, "200 OK"),  # Range is for GET
    ("/static/docs/", {}, "200 OK"),
    ("/static/docs", {}, "301 Moved Permanently"),
    ("/static/.env", {}, "403 Forbidden"),
    ("/static/..", {}, "404 Not Found"),
]


@pytest.mark.parametrize(("path", "headers", "status"), HEAD_CASES)
def test_head_is_get_without_a_body_and_opens_nothing(
    root: Path,
    opened: list[str],
    path: str,
    headers: dict[str, str],
    status: str,
) -> None:
    static = StaticFiles(root)
    full = get(
        static, path, extra={k: v for k, v in headers.items() if k != "HTTP_RANGE"}
    )
    # A file is opened (and checked) once before its headers are sent; then HEAD
    # only stats it.
    opened.clear()
    head = get(static, path, method="HEAD", extra=headers)
    assert not [p for p in opened if p.startswith(str(root))]
    assert head.status == status and head.body == b""
    assert head.headers == full.headers


def test_the_first_head_of_a_file_opens_it_to_check_it(
    root: Path, opened: list[str]
) -> None:
    static = StaticFiles(root)
    opened.clear()
    assert get(static, "/static/app.css", method="HEAD").status == "200 OK"
    assert [p for p in opened if p.startswith(str(root))] == [str(root / "app.css")]


# -- conditional requests ----------------------------------------------------------


def validators(static: StaticFiles, **headers: str) -> tuple[str, str]:
    outcome = get(static, "/static/app.css", extra=headers)
    return header(outcome, "ETag") or "", header(outcome, "Last-Modified") or ""


def http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("inm exact", 304),
        ("inm weak", 304),
        ("inm list", 304),
        ("inm list no spaces", 304),
        ("inm star", 304),
        ("inm other", 200),
        ("inm other, ims same", 200),
        ("inm gzip tag for identity", 200),
        ("ims same", 304),
        ("ims later", 304),
        ("ims earlier", 200),
        ("ims future", 200),
        ("ims garbage", 200),
        ("ims empty", 200),
        ("no validators", 200),
    ],
)
def test_conditional_requests(root: Path, name: str, status: int) -> None:
    mtime = time.time() - 7200
    os.utime(root / "app.css", (mtime, mtime))
    static = StaticFiles(root)
    etag, modified = validators(static)
    gzip_etag, _ = validators(static, HTTP_ACCEPT_ENCODING="gzip")
    headers = {
        "inm exact": {"HTTP_IF_NONE_MATCH": etag},
        "inm weak": {"HTTP_IF_NONE_MATCH": f"W/{etag}"},
        "inm list": {"HTTP_IF_NONE_MATCH": f'"a", W/"b", {etag}, "c"'},
        "inm list no spaces": {"HTTP_IF_NONE_MATCH": f'"a",{etag}'},
        "inm star": {"HTTP_IF_NONE_MATCH": "*"},
        "inm other": {"HTTP_IF_NONE_MATCH": '"other"'},
        "inm other, ims same": {
            "HTTP_IF_NONE_MATCH": '"other"',
            "HTTP_IF_MODIFIED_SINCE": modified,
        },
        "inm gzip tag for identity": {"HTTP_IF_NONE_MATCH": gzip_etag},
        "ims same": {"HTTP_IF_MODIFIED_SINCE": modified},
        "ims later": {"HTTP_IF_MODIFIED_SINCE": http_date(mtime + 60)},
        "ims earlier": {"HTTP_IF_MODIFIED_SINCE": http_date(mtime - 60)},
        "ims future": {"HTTP_IF_MODIFIED_SINCE": http_date(time.time() + 86400)},
        "ims garbage": {"HTTP_IF_MODIFIED_SINCE": "yesterday, probably"},
        "ims empty": {"HTTP_IF_MODIFIED_SINCE": ""},
        "no validators": {},
    }[name]
    outcome = get(static, "/static/app.css", extra=headers)
    assert outcome.status[:3] == str(status)
    if status == 304:
        assert outcome.body == b""
        assert dict(outcome.headers) == {
            "ETag": etag,
            "Cache-Control": "max-age=3600",
            "Vary": "Accept-Encoding",
        }
    else:
        assert outcome.body == CSS


def test_each_variant_has_its_own_etag_and_304(root: Path) -> None:
    static = StaticFiles(root)
    tags = {
        coding: validators(static, HTTP_ACCEPT_ENCODING=coding)[0]
        for coding in ("identity", "gzip", "br", "zstd")
    }
    assert len(set(tags.values())) == 4, tags
    outcome = get(
        static,
        "/static/app.css",
        HTTP_ACCEPT_ENCODING="gzip",
        HTTP_IF_NONE_MATCH=tags["gzip"],
    )
    assert outcome.status == "304 Not Modified"
    assert header(outcome, "ETag") == tags["gzip"]


# -- ranges --------------------------------------------------------------------------

SIZE = len(CSS)
# (Range, status, the bytes expected (slice bounds), Content-Range)
RANGES = [
    ("bytes=0-0", 206, (0, 1), f"bytes 0-0/{SIZE}"),
    ("bytes=0-9", 206, (0, 10), f"bytes 0-9/{SIZE}"),
    ("bytes=10-", 206, (10, SIZE), f"bytes 10-{SIZE - 1}/{SIZE}"),
    ("bytes=-1", 206, (SIZE - 1, SIZE), f"bytes {SIZE - 1}-{SIZE - 1}/{SIZE}"),
    ("bytes=-10", 206, (SIZE - 10, SIZE), f"bytes {SIZE - 10}-{SIZE - 1}/{SIZE}"),
    (f"bytes=-{SIZE * 2}", 206, (0, SIZE), f"bytes 0-{SIZE - 1}/{SIZE}"),
    (f"bytes={SIZE - 5}-{SIZE * 3}", 206, (SIZE - 5, SIZE), f"bytes {SIZE - 5}-{SIZE - 1}/{SIZE}"),  # noqa: E501
    ("BYTES = 0-4", 206, (0, 5), f"bytes 0-4/{SIZE}"),
    ("bytes=0-4,", 206, (0, 5), f"bytes 0-4/{SIZE}"),
    ("bytes=0-5, 3-9", 206, (0, 10), f"bytes 0-9/{SIZE}"),  # merged
    ("bytes=0-4,5-9", 206, (0, 10), f"bytes 0-9/{SIZE}"),  # adjacent: merged
    (f"bytes=0-4, {SIZE}-", 206, (0, 5), f"bytes 0-4/{SIZE}"),  # one unsatisfiable
    (f"bytes={SIZE}-", 416, None, f"bytes */{SIZE}"),
    (f"bytes={SIZE + 10}-{SIZE + 20}", 416, None, f"bytes */{SIZE}"),
    ("bytes=-0", 416, None, f"bytes */{SIZE}"),
    ("bytes=5-2", 200, (0, SIZE), None),  # invalid: ignored
    ("items=0-4", 200, (0, SIZE), None),
    ("bytes=abc", 200, (0, SIZE), None),
    ("bytes=", 200, (0, SIZE), None),
    ("bytes=1-2-3", 200, (0, SIZE), None),
    ("bytes 0-4", 200, (0, SIZE), None),
    ("bytes=" + "9" * 5000 + "-", 200, (0, SIZE), None),  # too long: ignored
    ("bytes=" + ",".join(f"{i * 4}-{i * 4 + 1}" for i in range(MAX_RANGES + 1)), 200, (0, SIZE), None),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(("value", "status", "span", "content_range"), RANGES)
def test_single_ranges(
    root: Path,
    value: str,
    status: int,
    span: tuple[int, int] | None,
    content_range: str | None,
) -> None:
    outcome = get(StaticFiles(root), "/static/app.css", HTTP_RANGE=value)
    assert outcome.status[:3] == str(status)
    assert header(outcome, "Content-Range") == content_range
    if span is not None:
        assert outcome.body == CSS[span[0] : span[1]]
        assert header(outcome, "Content-Type") == "text/css; charset=utf-8"
    else:
        assert outcome.body == b""
    assert header(outcome, "Content-Encoding") is None
    assert header(outcome, "Vary") == "Accept-Encoding"


def test_ranges_come_from_the_identity_file(root: Path) -> None:
    static = StaticFiles(root)
    etag, _ = validators(static)
    outcome = get(
        static, "/static/app.css", HTTP_RANGE="bytes=0-9", HTTP_ACCEPT_ENCODING="br"
    )
    assert outcome.status == "206 Partial Content"
    assert outcome.body == CSS[:10]
    assert header(outcome, "ETag") == etag
    assert header(outcome, "Content-Encoding") is None


def parse_multipart(outcome: Served) -> list[tuple[str, str, bytes]]:
    kind = header(outcome, "Content-Type") or ""
    match = re.fullmatch(r"multipart/byteranges; boundary=(\w+)", kind)
    assert match, kind
    boundary = match.group(1).encode()
    body = outcome.body
    assert body.endswith(b"--" + boundary + b"--\r\n")
    parts = []
    for chunk in body.split(b"--" + boundary)[1:-1]:
        head, _, data = chunk.partition(b"\r\n\r\n")
        assert data.endswith(b"\r\n")
        fields = dict(
            line.split(": ", 1) for line in head.decode().strip().split("\r\n")
        )
        parts.append((fields["Content-Type"], fields["Content-Range"], data[:-2]))
    return parts


def test_multiple_ranges_are_multipart(root: Path) -> None:
    outcome = get(
        StaticFiles(root),
        "/static/app.css",
        same_body=False,
        HTTP_RANGE="bytes=-5, 0-0, 20-29",
    )
    assert outcome.status == "206 Partial Content"
    assert header(outcome, "Content-Range") is None
    assert parse_multipart(outcome) == [
        ("text/css; charset=utf-8", f"bytes 0-0/{SIZE}", CSS[:1]),
        ("text/css; charset=utf-8", f"bytes 20-29/{SIZE}", CSS[20:30]),
        ("text/css; charset=utf-8", f"bytes {SIZE - 5}-{SIZE - 1}/{SIZE}", CSS[-5:]),
    ]


@pytest.mark.parametrize(
    ("if_range", "status"),
    [("etag", 206), ("date", 206), ("weak", 200), ("old", 200), ("old date", 200)],
)
def test_if_range(root: Path, if_range: str, status: int) -> None:
    static = StaticFiles(root)
    etag, modified = validators(static)
    value = {
        "etag": etag,
        "date": modified,
        "weak": f"W/{etag}",
        "old": '"0-0"',
        "old date": http_date(0),
    }[if_range]
    outcome = get(
        static, "/static/app.css", HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=value
    )
    assert outcome.status[:3] == str(status)
    assert outcome.body == (CSS[:10] if status == 206 else CSS)


def test_an_empty_file_ignores_ranges(root: Path) -> None:
    outcome = get(StaticFiles(root), "/static/empty.txt", HTTP_RANGE="bytes=0-0")
    assert outcome.status == "200 OK" and outcome.body == b""
    assert header(outcome, "Content-Length") == "0"


def test_if_none_match_comes_before_range(root: Path) -> None:
    static = StaticFiles(root)
    etag, _ = validators(static)
    outcome = get(
        static, "/static/app.css", HTTP_RANGE="bytes=0-9", HTTP_IF_NONE_MATCH=etag
    )
    assert outcome.status == "304 Not Modified"


def test_parse_ranges_merges_and_sorts() -> None:
    assert parse_ranges("bytes=50-59, 0-9, 5-14", 100) == [(0, 15), (50, 60)]
    assert parse_ranges("bytes=0-0", 0) == []
    assert parse_ranges("bytes=-", 100) is None


# -- variants --------------------------------------------------------------------------

VARIANTS = [
    (None, "identity"),
    ("", "identity"),
    ("identity", "identity"),
    ("gzip", "gzip"),
    ("x-gzip", "gzip"),
    ("gzip, deflate", "gzip"),
    ("gzip, br", "br"),  # the smallest acceptable wins
    ("gzip, br, zstd", "br"),
    ("br;q=0, gzip", "gzip"),
    ("zstd, gzip;q=0.5", "zstd"),
    ("*", "br"),
    ("*;q=0, gzip", "gzip"),
    ("gzip;q=0", "identity"),
    ("deflate, compress", "identity"),
    ("GZIP", "gzip"),
    ("gzip;q=abc", "identity"),  # a malformed q: the entry is ignored
    ("identity;q=0", "identity"),  # nothing acceptable: identity all the same
]


@pytest.mark.parametrize(("accept", "coding"), VARIANTS)
def test_variant_choice(root: Path, accept: str | None, coding: str) -> None:
    headers = {} if accept is None else {"HTTP_ACCEPT_ENCODING": accept}
    outcome = get(StaticFiles(root), "/static/app.css", extra=headers)
    files = {
        "identity": "app.css",
        "gzip": "app.css.gz",
        "br": "app.css.br",
        "zstd": "app.css.zst",
    }
    assert outcome.body == (root / files[coding]).read_bytes()
    expected = None if coding == "identity" else coding
    assert header(outcome, "Content-Encoding") == expected
    assert header(outcome, "Content-Type") == "text/css; charset=utf-8"
    assert header(outcome, "Vary") == "Accept-Encoding"
    assert header(outcome, "Content-Length") == str(len(outcome.body))


def test_precompressed_off_and_files_without_variants(root: Path) -> None:
    outcome = get(
        StaticFiles(root, precompressed=False),
        "/static/app.css",
        HTTP_ACCEPT_ENCODING="gzip, br",
    )
    assert outcome.body == CSS and header(outcome, "Vary") is None
    outcome = get(StaticFiles(root), "/static/logo.png", HTTP_ACCEPT_ENCODING="gzip")
    assert header(outcome, "Vary") is None
    assert header(outcome, "Content-Encoding") is None


def test_variants_are_files_of_their_own_too(root: Path) -> None:
    outcome = get(StaticFiles(root), "/static/app.css.gz", HTTP_ACCEPT_ENCODING="gzip")
    assert header(outcome, "Content-Type") == "application/gzip"
    assert header(outcome, "Content-Encoding") is None
    assert gzip.decompress(outcome.body) == CSS


# -- headers ---------------------------------------------------------------------------

TYPES = [
    ("/static/app.css", "text/css; charset=utf-8"),
    ("/static/app.3f9a1c2b.js", "text/javascript; charset=utf-8"),
    ("/static/data.json", "application/json; charset=utf-8"),
    ("/static/logo.png", "image/png"),
    ("/static/archive.tar.gz", "application/gzip"),
    ("/static/README", "application/octet-stream"),
    ("/static/docs/", "text/html; charset=utf-8"),
]


@pytest.mark.parametrize(("path", "kind"), TYPES)
def test_content_types(root: Path, path: str, kind: str) -> None:
    outcome = get(StaticFiles(root), path, HTTP_ACCEPT_ENCODING="gzip")
    assert header(outcome, "Content-Type") == kind
    assert header(outcome, "X-Content-Type-Options") == "nosniff"
    assert header(outcome, "Accept-Ranges") == "bytes"
    if path.endswith(".tar.gz"):
        assert header(outcome, "Content-Encoding") is None


def test_content_type_table() -> None:
    assert content_type("A.JS") == "text/javascript; charset=utf-8"
    assert content_type("x.tar.gz") == "application/gzip"
    assert content_type("x.svg") == "image/svg+xml; charset=utf-8"
    assert content_type("noext") == "application/octet-stream"
    assert content_type(".bashrc") == "application/octet-stream"


def test_extra_content_types(root: Path) -> None:
    write(root / "model.gltf", b"{}")
    static = StaticFiles(root, content_types={".GLTF": "model/gltf+json"})
    outcome = get(static, "/static/model.gltf")
    assert header(outcome, "Content-Type") == "model/gltf+json"


def test_cache_control(root: Path) -> None:
    static = StaticFiles(root, max_age=60)
    assert header(get(static, "/static/app.css"), "Cache-Control") == "max-age=60"
    assert (
        header(get(static, "/static/app.3f9a1c2b.js"), "Cache-Control")
        == "max-age=31536000, immutable"
    )
    none = StaticFiles(root, max_age=None, immutable=None)
    assert header(get(none, "/static/app.css"), "Cache-Control") is None
    assert header(get(none, "/static/app.3f9a1c2b.js"), "Cache-Control") is None
    by_dir = StaticFiles(root, immutable=lambda path: path.startswith("sub/"))
    cache = header(get(by_dir, "/static/sub/deep/file.txt"), "Cache-Control")
    assert cache == "max-age=31536000, immutable"
    by_regex = StaticFiles(root, immutable=r"\.png$")
    assert "immutable" in (
        header(get(by_regex, "/static/logo.png"), "Cache-Control") or ""
    )


@pytest.mark.parametrize(
    ("name", "hashed"),
    [
        ("app.3f9a1c2b.js", True),
        ("main-0a1b2c3d4e5f.css", True),
        ("css/site.3f9a1c2b1234.css", True),
        ("app.js", False),
        ("logo-20240101.png", False),  # a date, not a hash
        ("jquery-3.7.1.min.js", False),
        ("deadbeef.js", False),
    ],
)
def test_hashed_names(name: str, hashed: bool) -> None:
    assert (HASHED_NAME.search(name) is not None) == hashed


# -- directories, prefixes, fallthrough ------------------------------------------------


def test_directories(root: Path) -> None:
    static = StaticFiles(root)
    assert get(static, "/static/docs/").body == b"<h1>docs</h1>"
    assert get(static, "/static/docs/index.html").body == b"<h1>docs</h1>"
    outcome = get(static, "/static/docs", QUERY_STRING="a=1&b=%20", SCRIPT_NAME="/app")
    assert outcome.status == "301 Moved Permanently"
    assert header(outcome, "Location") == "/app/static/docs/?a=1&b=%20"
    assert get(static, "/static/docs", method="POST").status[:3] == "405"
    assert get(static, "/static/noindex/").body == b"app"  # never a listing
    assert get(static, "/static/noindex").body == b"app"
    assert get(static, "/static").body == b"app"  # the root has no index
    write(root / "index.html", b"home")
    static = StaticFiles(root)
    assert header(get(static, "/static"), "Location") == "/static/"
    assert get(static, "/static/").body == b"home"
    no_index = StaticFiles(root, index=None)
    assert get(no_index, "/static/docs/").body == b"app"
    assert get(no_index, "/static/docs").body == b"app"


def test_directories_in_autorefresh(root: Path) -> None:
    static = StaticFiles(root, autorefresh=True)
    assert get(static, "/static/docs/").body == b"<h1>docs</h1>"
    assert header(get(static, "/static/docs"), "Location") == "/static/docs/"
    assert get(static, "/static/noindex/").body == b"app"
    assert get(static, "/static/app.css/").body == b"app"


def test_remembered_misses_stay_misses_and_hostile_paths_stay_refused(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roomy = StaticFiles(root)  # a memo far larger than the table
    for url, _ in TRAVERSAL:
        get(roomy, server_path(url))
    hostile = {server_path(url) for url, expected in TRAVERSAL if expected != "app"}
    assert "/static/link-out.txt" in roomy._misses  # a safe miss is remembered
    assert not hostile & roomy._misses  # a refused path never is

    monkeypatch.setattr("middleware.static.table.MISS_MEMO_SIZE", 4)
    static = StaticFiles(root)
    first = [get(static, server_path(url)).status for url, _ in TRAVERSAL]
    for n in range(10):
        assert get(static, f"/static/missing-{n}.css").body == b"app"
    assert "/static/missing-9.css" in static._misses
    assert len(static._misses) <= 4  # bounded: emptied when full
    again = [get(static, server_path(url)).status for url, _ in TRAVERSAL]
    assert again == first  # the same answers with a memo, hostile paths included
    strict = StaticFiles(root, fallthrough=False)
    for _ in range(2):
        assert get(strict, "/static/missing.css").status == "404 Not Found"
    assert get(strict, "/static/app.css").body == CSS


def test_non_ascii_redirect_is_percent_encoded(root: Path) -> None:
    write(root / "répertoire" / "index.html", b"r")
    outcome = get(StaticFiles(root), server_path("/static/r%C3%A9pertoire"))
    assert header(outcome, "Location") == "/static/r%C3%A9pertoire/"


def test_fallthrough_off(root: Path) -> None:
    static = StaticFiles(root, fallthrough=False)
    assert get(static, "/static/missing.css").status == "404 Not Found"
    assert get(static, "/static/link-out.txt").status == "404 Not Found"
    assert get(static, "/elsewhere").body == b"app"


@pytest.mark.parametrize("prefix", ["", "/", "/assets/v1/"])
def test_prefixes(root: Path, prefix: str) -> None:
    static = StaticFiles(root, prefix=prefix)
    base = prefix.rstrip("/")
    assert get(static, f"{base}/app.css").body == CSS
    assert get(static, f"{base}/missing").body == b"app"
    assert get(static, f"{base}/../x").status == "404 Not Found"


# -- files that change -------------------------------------------------------------


def test_a_file_changed_after_the_scan_is_sent_as_it_is_now(root: Path) -> None:
    static = StaticFiles(root, precompressed=False)
    before = get(static, "/static/data.json")
    write(root / "data.json", b'{"a": 1, "b": 2, "c": 3}')
    os.utime(root / "data.json", ns=(0, 10**18))
    after = get(static, "/static/data.json")
    assert after.body == b'{"a": 1, "b": 2, "c": 3}'
    assert header(after, "Content-Length") == str(len(after.body))
    assert header(after, "ETag") != header(before, "ETag")
    # The table was updated: a HEAD (no file opened) says the same.
    head = get(static, "/static/data.json", method="HEAD")
    assert head.headers == after.headers


def test_a_variant_linked_out_of_the_root_is_not_served(root: Path) -> None:
    outcome = get(StaticFiles(root), "/static/data.json", HTTP_ACCEPT_ENCODING="gzip")
    assert outcome.body == b'{"a": 1}' and header(outcome, "Vary") is None


def test_a_changed_index_is_reloaded_under_its_directory_url(root: Path) -> None:
    static = StaticFiles(root)
    write(root / "docs" / "index.html", b"<h1>new docs</h1>")
    os.utime(root / "docs" / "index.html", ns=(0, 10**18))
    assert get(static, "/static/docs/").body == b"<h1>new docs</h1>"


def test_a_file_that_shrinks_while_sent_ends_the_response_with_an_error(
    root: Path,
) -> None:
    environ = conformance.make_environ("GET", "/static/app.css")
    environ["HTTP_RANGE"] = "bytes=0-"
    body = StaticFiles(root)(app)(environ, lambda *args: lambda data: None)
    (root / "app.css").write_bytes(CSS[:10])  # after the answer was made
    try:
        with pytest.raises(OSError, match="ended .* bytes early"):
            b"".join(body)
    finally:
        body.close()  # type: ignore[attr-defined]


def test_a_file_removed_after_the_scan_is_missing(root: Path) -> None:
    static = StaticFiles(root)
    (root / "data.json").unlink()
    assert get(static, "/static/data.json").body == b"app"
    (root / "app.css.br").unlink()
    outcome = get(static, "/static/app.css", HTTP_ACCEPT_ENCODING="br, gzip")
    assert header(outcome, "Content-Encoding") == "gzip"


def test_scan_mode_does_not_see_new_files_and_autorefresh_does(root: Path) -> None:
    static = StaticFiles(root)
    live = StaticFiles(root, autorefresh=True)
    write(root / "new.txt", b"new")
    assert get(static, "/static/new.txt").body == b"app"
    assert get(live, "/static/new.txt").body == b"new"
    write(root / "new.txt.gz", gzip.compress(b"new" * 100, mtime=0)[:10])
    outcome = get(live, "/static/new.txt", HTTP_ACCEPT_ENCODING="gzip")
    assert header(outcome, "Vary") == "Accept-Encoding"


def test_without_a_file_wrapper_the_body_is_read_in_blocks(root: Path) -> None:
    static = StaticFiles(root)
    big = write(root / "big.bin", os.urandom(200_000))
    static = StaticFiles(root)
    environ = conformance.make_environ("GET", "/static/big.bin")
    del environ["wsgi.file_wrapper"]
    outcome = conformance.run(static(app), environ)
    assert outcome.body == big.read_bytes()
    assert len(outcome.chunks) > 1


def test_the_file_wrapper_is_the_servers_own(root: Path) -> None:
    outcome = conformance.run(
        StaticFiles(root)(app), conformance.make_environ("GET", "/static/app.css")
    )
    assert type(outcome.result).__name__ == "FileWrapper"


# -- configuration --------------------------------------------------------------------

BAD_OPTIONS = [
    ({"prefix": "static"}, "prefix"),
    ({"prefix": "/a/../b"}, "prefix"),
    ({"prefix": 5}, "prefix"),
    ({"max_age": -1}, "max_age"),
    ({"max_age": "3600"}, "max_age"),
    ({"max_age": True}, "max_age"),
    ({"immutable": "("}, "immutable"),
    ({"immutable": 5}, "immutable"),
    ({"index": "a/b.html"}, "index"),
    ({"index": ".."}, "index"),
    ({"dotfiles": "hide"}, "dotfiles"),
    ({"precompressed": "yes"}, "precompressed"),
    ({"follow_symlinks": 1}, "follow_symlinks"),
    ({"autorefresh": None}, "autorefresh"),
    ({"fallthrough": "no"}, "fallthrough"),
    ({"content_types": {"gltf": "model/gltf+json"}}, "content_types"),
    ({"content_types": {".x": "nonsense"}}, "content_types"),
    ({"content_types": {".x": "text/plain\r\nX: y"}}, "content_types"),
]


@pytest.mark.parametrize(("options", "name"), BAD_OPTIONS)
def test_bad_options_name_the_option(
    root: Path, options: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValueError, match=f"^{name}: "):
        StaticFiles(root, **options)


def test_a_missing_directory_is_an_error_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="directory: .*missing.* is not an existing"):
        StaticFiles(tmp_path / "missing")
    with pytest.raises(ValueError, match="directory: "):
        StaticFiles(write(tmp_path / "file", b""))
    with pytest.raises(TypeError, match="directory: expected a path"):
        StaticFiles(5)  # type: ignore[arg-type]
