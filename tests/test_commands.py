"""Every install-and-run command of the README, the Quickstart and the Flask and
Django pages, run as written in a fresh virtual environment in a fresh copy of the
repository, and the server each starts visited over HTTP.

Each walk lists its command lines as the page prints them, and the test first
checks that the page still prints them (so a changed page fails here until the
walk follows it). What the test does that a page does not say is written beside
it: the copy of the checkout stands for ``git clone``; the Flask and Django pages
start from the Quickstart's ``.venv`` and the README's ``SESSION_SECRET``, so the
walk makes them first; the git URL install points at a local git copy (no network
here but the package index). The README's test command is not re-run here: it is
the command ``.ci/run`` runs.

Each walk makes a virtual environment and installs from the package index, so these
tests run under ``CI=true`` (``.ci/run``) or with ``RUN_DOC_COMMANDS=1``; elsewhere
they are skipped with that reason. The documented ports (8080, 8000) must be free.
"""

from __future__ import annotations

import base64
import http.client
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .servers import ROOT, accepting

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        os.environ.get("CI") != "true" and os.environ.get("RUN_DOC_COMMANDS") != "1",
        reason="each walk makes a fresh virtual environment: run by .ci/run "
        "(CI=true) or with RUN_DOC_COMMANDS=1",
    ),
]

AUTH = "Basic " + base64.b64encode(b"demo:demo-password").decode()
SECRET = (
    "export SESSION_SECRET=\"$(python3 -c 'import secrets; "
    "print(secrets.token_hex(32))')\""
)
VENV = "python3 -m venv .venv"


def get(port: int, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        found = {k.lower(): v for k, v in response.getheaders()}
        return response.status, found, response.read()
    finally:
        connection.close()


def the_demo(*codings: str) -> Callable[[int], None]:
    """The demo site answers: 401, then the page compressed in one of *codings*
    (what the installed extras allow), its stylesheet, and the health check."""

    def check(port: int) -> None:
        browser = {"Accept-Encoding": "gzip, deflate, br, zstd"}
        assert get(port, "/")[0] == 401
        status, headers, _ = get(port, "/", Authorization=AUTH, **browser)
        assert status == 200 and headers.get("content-encoding") in codings, headers
        status, headers, _ = get(
            port, "/static/css/site.css", Authorization=AUTH, **browser
        )
        # The precompressed .br sibling: served as it is, with or without brotli.
        assert (status, headers.get("content-encoding")) == (200, "br")
        assert get(port, "/healthz")[:1] == (200,)

    return check


def the_flask_app(port: int) -> None:
    assert get(port, "/")[0] == 401
    status, _, body = get(port, "/", Authorization=AUTH)
    assert status == 200 and b"demo" in body
    assert get(port, "/healthz")[0::2] == (200, b"ok")


def the_django_app(port: int) -> None:
    assert get(port, "/")[0] == 401
    status, _, body = get(port, "/", Authorization=AUTH)
    assert status == 200 and b"demo" in body
    assert get(port, "/nowhere", Authorization=AUTH)[0] == 404  # Django's own


def installed(*modules: str) -> Callable[[Path], None]:
    """The walk's environment imports *modules*."""

    def check(copy: Path) -> None:
        python = copy / ".venv" / "bin" / "python"
        code = "; ".join(f"import {name}" for name in modules)
        done = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr

    return check


@dataclass
class Walk:
    """Lines a page prints, run in order in one shell from the copy's root. With a
    *port*, the last line is a server: the walk waits for it and runs *visit*."""

    page: str
    lines: list[str]
    port: int | None = None
    visit: Callable[[int], None] | None = None
    check: Callable[[Path], None] | None = None
    #: Lines the page does not print (it starts from another page's state).
    before: list[str] = field(default_factory=list)


README = "README.md"
QUICKSTART = "docs/quickstart.rst"
DEMO = (
    "python3 -m venv .venv && .venv/bin/pip install -e "
    "'.[server,bcrypt,brotli,zstd]' && .venv/bin/python -m middleware serve "
    "examples/site.ini"
)
GIT_URL = "https://github.com/wsgi-middleware-toolkit/wsgi-middleware-toolkit"

WALKS: dict[str, list[Walk]] = {
    "readme": [
        Walk(README, [SECRET, DEMO], 8080, the_demo("br", "zstd")),
        Walk(
            README,
            [
                SECRET,
                ".venv/bin/pip install -e '.[gunicorn]' && .venv/bin/gunicorn "
                "--paste examples/site.ini -w 2",
            ],
            8000,
            the_demo("br", "zstd"),
        ),
    ],
    "quickstart": [
        Walk(
            QUICKSTART,
            [
                VENV,
                ".venv/bin/pip install -e .                       "
                "# the core; depends on WebOb only",
                ".venv/bin/pip install -e '.[server,bcrypt]'      "
                "# plus waitress, PasteDeploy, bcrypt",
            ],
            check=installed(
                "middleware", "webob", "waitress", "paste.deploy", "bcrypt"
            ),
        ),
        Walk(
            QUICKSTART,
            [
                SECRET,
                "python3 -m venv .venv && .venv/bin/pip install -e '.[server,bcrypt]' "
                "&& .venv/bin/python -m middleware serve examples/site.ini",
            ],
            8080,
            the_demo("gzip"),  # without the brotli and zstd extras
        ),
    ],
    "quickstart-git-url": [
        Walk(
            QUICKSTART,
            [
                VENV,
                ".venv/bin/pip install 'wsgi-middleware-toolkit[server,bcrypt] @ "
                f"git+{GIT_URL}'",
            ],
            check=installed("middleware", "waitress", "paste.deploy", "bcrypt"),
        ),
    ],
    "flask": [
        Walk(
            "docs/flask.rst",
            [
                ".venv/bin/pip install -e '.[server,bcrypt]' flask",
                "cd examples/flask_app && ../../.venv/bin/python wsgi.py",
            ],
            8080,
            the_flask_app,
            before=[SECRET, VENV],
        ),
    ],
    "django": [
        Walk(
            "docs/django.rst",
            [
                ".venv/bin/pip install -e '.[server,gunicorn,bcrypt]' django",
                "cd examples/django_project",
                "../../.venv/bin/waitress-serve --listen=127.0.0.1:8080 "
                "demo_site.wsgi:application",
            ],
            8080,
            the_django_app,
            before=[SECRET, VENV],
        ),
        Walk(
            "docs/django.rst",
            [
                "cd examples/django_project",
                # The page's alternative, after "# or: ".
                "../../.venv/bin/gunicorn --bind 127.0.0.1:8080 demo_site.wsgi",
            ],
            8080,
            the_django_app,
            before=[SECRET],
        ),
    ],
}


def copy_of_the_checkout(destination: Path) -> Path:
    """The files git knows of (committed, changed or new, not ignored), copied:
    what a clone of this working tree holds, without its .venv."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def as_a_git_repository(checkout: Path) -> None:
    """Make *checkout* a git repository with one commit, for ``git+file://``."""
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@localhost",
            "commit",
            "-qm",
            "t",
        ],
    ):
        subprocess.run(command, cwd=checkout, check=True, capture_output=True)


def environment() -> dict[str, str]:
    """This process's environment without its virtual environment (the walk's
    ``python3`` is the system's) and without a session secret of its own."""
    outer = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
    path = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if Path(entry) != outer
    ]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "SESSION_SECRET", "PYTHONPATH")
    }
    env["PATH"] = os.pathsep.join(path)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def printed(walk: Walk) -> None:
    page = (ROOT / walk.page).read_text(encoding="utf-8")
    for line in walk.lines:
        assert line in page, f"{walk.page} no longer prints: {line}"


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the walk's shell and what it started (its own process group, led by
    its PID)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
    with pytest.raises(ProcessLookupError):  # nothing of the group is left
        os.killpg(process.pid, 0)


def run(walk: Walk, copy: Path, log: Path, url: str = GIT_URL) -> None:
    """Run *walk* in *copy*; the git URL, when it has one, replaced by *url*."""
    printed(walk)
    lines = [line.replace(GIT_URL, url) for line in walk.lines]
    script = "\n".join(["set -e", *walk.before, *lines])
    if walk.port is not None and accepting(walk.port):
        pytest.fail(f"port {walk.port} is in use: {walk.page}'s command binds it")
    with log.open("ab") as output:
        process = subprocess.Popen(
            ["bash", "-c", script],
            cwd=copy,
            env=environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        if walk.port is None:
            assert process.wait(timeout=900) == 0, log.read_text()
        else:
            deadline = time.monotonic() + 900  # installs come first
            while not accepting(walk.port):
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            time.sleep(1)  # gunicorn: let both workers boot
            assert walk.visit is not None
            walk.visit(walk.port)
    finally:
        stop(process)
    if walk.check is not None:
        walk.check(copy)


@pytest.mark.parametrize("name", list(WALKS))
def test_each_documented_command_works_as_written(name: str, tmp_path: Path) -> None:
    log = tmp_path / "walk.log"
    if name == "quickstart-git-url":
        # "Without a checkout": an empty directory, and the repository's URL
        # replaced by a local git copy of this checkout.
        source = copy_of_the_checkout(tmp_path / "source")
        as_a_git_repository(source)
        where = tmp_path / "elsewhere"
        where.mkdir()
        # With a host: the pip a fresh venv has (23.2) refuses git+file:///path.
        url = f"file://localhost{source}"
    else:
        where, url = copy_of_the_checkout(tmp_path / "checkout"), GIT_URL
    for walk in WALKS[name]:
        run(walk, where, log, url)
