"""The Flask and Django examples, wrapped with compose(), get the demo's scripted
visit in-process through WebTest, plus a check that each framework's own features
still work under the stack; and the PEP 3333 hello world, wrapped."""

from __future__ import annotations

import gzip
import importlib
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .visit import ROOT, WebTestClient, scripted_visit


def import_from(directory: Path, module: str) -> Any:
    # The Flask and Django examples read their session secret from the
    # environment, as the docs tell a user to export it.
    os.environ.setdefault("SESSION_SECRET", secrets.token_hex(32))
    sys.path.insert(0, str(directory))
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(directory))


@pytest.fixture
def flask_wsgi() -> Iterator[Any]:
    yield import_from(ROOT / "examples" / "flask_app", "wsgi")
    for name in ("wsgi", "app"):
        sys.modules.pop(name, None)


def test_flask_example_gets_the_visit(flask_wsgi: Any) -> None:
    scripted_visit(WebTestClient(flask_wsgi.app))


def test_flask_example_is_still_flask(flask_wsgi: Any) -> None:
    # Flask's own 404 and its test client go through the stack too.
    client = flask_wsgi.app.test_client()
    response = client.get("/nowhere", headers={"Authorization": "Basic eDp5"})
    assert response.status_code == 401  # BasicAuth answered before Flask
    assert flask_wsgi.app.url_map.bind("localhost").match("/") == ("index", {})


def test_flask_example_exempts_its_health_check(flask_wsgi: Any) -> None:
    # docs/flask.rst shows the example's BasicAuth(exempt=["/healthz"]).
    reply = WebTestClient(flask_wsgi.app).get("/healthz", {})
    assert (reply.status, reply.body) == (200, b"ok")


@pytest.fixture(scope="module")
def django_wsgi() -> Any:
    return import_from(ROOT / "examples" / "django_project", "demo_site.wsgi")


def test_django_example_gets_the_visit(django_wsgi: Any) -> None:
    scripted_visit(WebTestClient(django_wsgi.application))


def test_django_example_is_still_django(django_wsgi: Any) -> None:
    client = WebTestClient(django_wsgi.application)
    reply = client.get("/nowhere", {"Authorization": "Basic ZGVtbzpkZW1vLXBhc3N3b3Jk"})
    assert reply.status == 404  # Django's own 404, through the stack
    assert b"Not Found" in reply.body


def test_plain_wsgi_example() -> None:
    example = import_from(ROOT / "examples", "plain_wsgi")
    client = WebTestClient(example.app)
    reply = client.get("/", {"Accept-Encoding": "gzip"})
    assert reply.status == 200
    assert gzip.decompress(reply.body) == b"Hello world!\n" * 40
