"""``python -m middleware check`` and :func:`middleware.testing.assert_conforms`: every
middleware of ours passes every cell; middleware broken on purpose fails the right
cells, one kind of defect per test; a target that cannot be loaded is one line and
status 2; ``--json`` is what CI systems parse.

The anchors' results (docs/testing.rst) are in tests/test_check_anchors.py."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from middleware import Gzip
from middleware.__main__ import main
from middleware.testing import assert_conforms

ROOT = Path(__file__).resolve().parent.parent
ALICE = "Basic " + base64.b64encode(b"alice:wonderland").decode()
STATIC = ROOT / "tests" / "fixtures" / "static"
SHA1_ALICE = "{SHA}" + base64.b64encode(hashlib.sha1(b"wonderland").digest()).decode()


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["check", *args])
    out, err = capsys.readouterr()
    return status, out, err


def failures(capsys: pytest.CaptureFixture[str], *args: str) -> set[tuple[str, str]]:
    """The failing (style, check) pairs of a --json run, which must exit 1."""
    status, out, _ = check(capsys, *args, "--json")
    assert status == 1, out
    found = json.loads(out)
    return {(cell["style"], cell["check"]) for cell in found["failures"]}


# -- ours: every cell passes ---------------------------------------------------------

OURS = {
    "gzip": ["middleware:Gzip", "--option", "min_size=0"],
    "compress": ["middleware:Compress", "--option", "min_size=0"],
    "errors": ["middleware:ErrorCatcher"],
    "access-log": ["middleware:AccessLog"],
    "session": ["middleware:Session", "--option", f"secret={'s' * 40}"],
    "basic-auth": [
        "middleware:BasicAuth",
        "--option", f"users={{'alice': {SHA1_ALICE!r}}}",
        "--environ", f"HTTP_AUTHORIZATION={ALICE}",
    ],
    "static": [
        "middleware:StaticFiles", "--option", f"directory={STATIC}",
    ],
    "proxy-headers": ["middleware:ProxyHeaders"],
    "security-headers": ["middleware:SecurityHeaders"],
    "rate-limit": ["middleware:RateLimit", "--option", "limits=1000000/second"],
}  # fmt: skip


@pytest.mark.parametrize("name", list(OURS))
def test_each_of_ours_passes_every_cell(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = check(capsys, *OURS[name])
    assert status == 0, out + err
    assert "FAIL" not in out
    assert " cells pass" in out and "failed checks" not in out


def test_the_demo_pipeline_passes_every_cell(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSION_SECRET", secrets.token_hex(32))
    demo = "Basic " + base64.b64encode(b"demo:demo-password").decode()
    status, out, err = check(
        capsys, "--ini", "examples/site.ini", "--environ", f"HTTP_AUTHORIZATION={demo}"
    )
    assert status == 0, out + err
    # One filter of it, by name.
    status, out, err = check(capsys, "--ini", "examples/site.ini", "--name", "compress")
    assert status == 0, out + err
    assert "examples/site.ini [compress]" in out


# -- broken on purpose: exit 1, the right cells ---------------------------------------


def test_a_middleware_that_does_not_forward_close(
    capsys: pytest.CaptureFixture[str],
) -> None:
    found = failures(capsys, "tests.broken_middleware:no_close")
    assert ("closing-iterable", "close") in found
    assert ("raise-in-close", "exception") in found  # its error never raised
    # Re-yielding also hides the server's file wrapper (no sendfile).
    allowed = {"close", "exception", "unraisable", "file-wrapper"}
    assert {check for _, check in found} <= allowed


def test_a_middleware_that_starts_the_response_before_the_app(
    capsys: pytest.CaptureFixture[str],
) -> None:
    found = failures(capsys, "tests.broken_middleware:early_start")
    # The app's own status never reaches the server.
    assert ("204", "status") in found and ("304", "status") in found
    assert ("exc-info-first-call", "status") in found


def test_a_middleware_that_drops_exc_info(capsys: pytest.CaptureFixture[str]) -> None:
    found = failures(capsys, "tests.broken_middleware:drops_exc_info")
    assert ("exc-info-before-sent", "exception") in found
    assert ("exc-info-after-sent", "exception") in found
    assert {style for style, _ in found} <= {
        "exc-info-first-call", "exc-info-before-sent", "exc-info-after-sent",
    }  # fmt: skip


def test_a_middleware_that_loses_write(capsys: pytest.CaptureFixture[str]) -> None:
    found = failures(capsys, "tests.broken_middleware:loses_write")
    assert ("write-only", "body") in found
    assert ("write-then-iterable", "body") in found
    assert {style for style, _ in found} <= {
        "write-only", "write-then-iterable", "write-in-generator", "raise-after-write",
        "exc-info-after-sent",
    }  # fmt: skip


def test_a_middleware_that_sends_a_body_on_head(
    capsys: pytest.CaptureFixture[str],
) -> None:
    found = failures(capsys, "tests.broken_middleware:body_on_head")
    assert ("head", "no-body") in found
    assert {style for style, _ in found} == {"head", "head-close-raises"}


def test_a_middleware_that_keeps_request_state_on_itself(
    capsys: pytest.CaptureFixture[str],
) -> None:
    found = failures(capsys, "tests.broken_middleware:SharedState")
    assert {style for style, _ in found} == {"threads"}


# -- a target that cannot be loaded: one line, status 2 -------------------------------

UNLOADABLE = [
    (["no_such_module:thing"], "cannot import no_such_module: ModuleNotFoundError"),
    (["tests.broken_middleware:missing"], "tests.broken_middleware has no missing"),
    (["tests.broken_middleware"], "TARGET is module:attribute"),
    (["tests.broken_middleware:NOT_CALLABLE"], "is not callable (a int)"),
    (["tests.broken_middleware:refuses_to_wrap"], "raised RuntimeError: no app suits"),
    (["tests.broken_middleware:not_a_middleware"], "takes 2 arguments"),
    (["middleware:Gzip", "--option", "nonsense=1"], "does not take nonsense"),
    (["middleware:Gzip", "--option", "min_size"], "--option: expected key=value"),
    (["middleware:Gzip", "-k", "no-such-style"], "-k: no style matches"),
    (["--ini", "nowhere.ini"], "nowhere.ini: no such file"),
    (["--ini", "examples/site.ini", "--name", "demo"], "no [pipeline:demo] or"),
    ([], "give a TARGET (module:attribute) or --ini FILE"),
    # A module that exits as it is imported: not a silent pass (exit 0 before).
    (["tests.exits_on_import:mw"], "cannot import tests.exits_on_import: SystemExit"),
    (["tests.broken_middleware:holder.middleware"], "raised RuntimeError when looked"),
    # Not a literal: the string, which Gzip refuses, naming the option.
    (["middleware:Gzip", "--option", "min_size={[1]: 2}"], "raised ValueError: min_s"),
    (["--ini", "tests/fixtures/latin1.ini"], "latin1.ini: 'utf-8' codec"),
]


@pytest.mark.parametrize(("args", "message"), UNLOADABLE)
def test_a_target_that_cannot_be_loaded_is_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = check(capsys, *args)
    assert status == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err


def test_the_command_line_itself(tmp_path: Path) -> None:
    # As a user runs it, in a process of its own: exit statuses, no traceback.
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "middleware", "check", *args],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip

    assert run("middleware:Gzip", "-k", "head").returncode == 0
    broken = run("tests.broken_middleware:no_close", "-k", "closing")
    assert broken.returncode == 1
    assert "FAIL closing-iterable [bare] close: closed 0 times" in broken.stdout
    missing = run("no_such_module:x")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


# -- the shapes middleware come in ---------------------------------------------------


def test_a_paste_filter_factory_is_called_with_an_empty_global_conf(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # filter_factory(global_conf, **local_conf): its options as strings.
    status, out, err = check(capsys, "middleware.paste:gzip", "--option", "min_size=0")
    assert status == 0, out + err


def test_a_class_whose_app_is_optional_is_the_middleware(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = check(
        capsys, "tests.broken_middleware:AppOptional", "-k", "list"
    )
    assert status == 0, out + err
    status, out, err = check(
        capsys,
        "tests.broken_middleware:AppOptional",
        "--option",
        "level=2",
        "-k",
        "list",
    )
    assert status == 0, out + err


def test_a_compressor_that_holds_bytes_back_passes_the_cut_streams(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # PEP 3333 lets a middleware yield b"" while it accumulates: a stream cut by
    # an error or by the server gives less than the app sent, not a failure.
    status, out, err = check(
        capsys, "tests.broken_middleware:holds_back",
        "-k", "raise-after-first-chunk", "-k", "abandoned-midway", "-k", "list",
    )  # fmt: skip
    assert status == 0, out + err


def test_what_the_target_prints_does_not_spoil_the_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = check(
        capsys, "tests.broken_middleware:chatty", "-k", "list", "--json"
    )
    assert status == 0 and json.loads(out)["passed"] is True


def test_environ_values_are_taken_as_written() -> None:
    from middleware.testing.command import literal_options, parse_options

    written = ['HTTP_IF_NONE_MATCH="v1"', "HTTP_X_API_VERSION=2.10", "HTTP_X_ID=0x1F"]
    assert parse_options(written, "--environ") == {
        "HTTP_IF_NONE_MATCH": '"v1"', "HTTP_X_API_VERSION": "2.10", "HTTP_X_ID": "0x1F",
    }  # fmt: skip
    assert literal_options(["level=6", "name=x", "bad={[1]: 2}"], "--option") == {
        "level": 6, "name": "x", "bad": "{[1]: 2}",
    }  # fmt: skip


def test_a_run_in_process_leaves_sys_path_and_logging_as_they_were(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import logging

    path, handlers = list(sys.path), list(logging.getLogger().handlers)
    check(capsys, "--ini", "examples/site.ini", "--name", "compress", "-k", "list")
    assert sys.path == path and logging.getLogger().handlers == handlers


# -- --json ---------------------------------------------------------------------------


def test_json_has_the_target_every_cell_and_the_failures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = check(capsys, "tests.broken_middleware:loses_write", "--json")
    assert status == 1
    found: dict[str, Any] = json.loads(out)
    assert found["target"] == "tests.broken_middleware:loses_write"
    assert found["passed"] is False
    assert {cell["validator"] for cell in found["cells"]} == {
        "wsgiref", "werkzeug", "bare",
    }  # fmt: skip
    assert all(
        set(cell) == {"style", "validator", "passed", "check", "seen"}
        for cell in found["cells"]
    )
    assert found["failures"] == [c for c in found["cells"] if not c["passed"]]
    write_only = [c for c in found["failures"] if c["style"] == "write-only"]
    assert len(write_only) == 3 and "wanted 17 bytes" in write_only[0]["seen"]
    status, out, _ = check(capsys, "middleware:Gzip", "-k", "head", "--json")
    passed = json.loads(out)
    assert status == 0 and passed["failures"] == [] and passed["passed"] is True
    # -k matches within names: "head" picks empty-header-list too.
    styles = {"head", "head-close-raises", "empty-header-list"}
    assert {cell["style"] for cell in passed["cells"]} == styles


# -- assert_conforms, in a project's own tests ---------------------------------------


def test_assert_conforms_passes_ours_and_names_each_failing_cell() -> None:
    assert_conforms(Gzip(min_size=0))
    from .broken_middleware import loses_write

    with pytest.raises(AssertionError) as failed:
        assert_conforms(loses_write, styles=["write"])
    text = str(failed.value)
    assert "FAIL write-only [bare] body:" in text
    assert "loses_write: " in text and "cells pass" in text
    with pytest.raises(ValueError, match="no style matches"):
        assert_conforms(loses_write, styles=["nothing"])


# -- decoding by Content-Encoding (what a generic run compares) -----------------------


def encoders() -> dict[str, Any]:
    import gzip as gzip_module
    import zlib

    found: dict[str, Any] = {
        "gzip": gzip_module.compress,
        "deflate": zlib.compress,
        "raw-deflate": lambda data: zlib.compress(data)[2:-4],
    }
    try:
        import brotli

        found["br"] = brotli.compress
    except ImportError:  # pragma: no cover - the test extra installs it
        pass
    from middleware.compress import AVAILABLE

    if "zstd" in AVAILABLE:
        import zstandard

        found["zstd"] = zstandard.ZstdCompressor().compress
    return found


@pytest.mark.parametrize("coding", list(encoders()))
def test_each_coding_decodes_whole_and_cut_short(coding: str) -> None:
    from middleware.testing.codings import decode_content

    data = b"hello, wsgi world " * 200
    encoded = encoders()[coding](data)
    name = "deflate" if coding == "raw-deflate" else coding
    assert decode_content(name, encoded) == data
    # A body a server stopped reading: what it holds, no error.
    if coding != "raw-deflate":
        assert data.startswith(decode_content(name, encoded[: len(encoded) // 2]))


def test_an_unknown_or_corrupt_coding_fails_the_body_check() -> None:
    from middleware.testing import CheckFailed
    from middleware.testing.codings import decode_content

    with pytest.raises(CheckFailed, match="cannot decode") as failed:
        decode_content("compress", b"x")
    assert failed.value.check == "body"
    with pytest.raises(CheckFailed, match="does not decode"):
        decode_content("gzip", b"not gzip at all")
    assert decode_content("identity", b"x") == b"x"
    assert decode_content(None, b"x") == b"x"
