"""The examples of docs/writing.rst run, and pass the whole conformance kit: the
guide's code is code a test runs, so it cannot rot."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from middleware import Middleware
from middleware import testing as conformance
from middleware.testing import Subject

PAGE = Path(__file__).parent.parent / "docs" / "writing.rst"
BLOCK = re.compile(r"^\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", re.MULTILINE)


def examples() -> dict[str, Any]:
    """Every Python block of the page, run in order in one namespace."""
    namespace: dict[str, Any] = {"__name__": "writing_examples"}
    blocks = BLOCK.findall(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 4, "the page's examples were not found"
    for block in blocks:
        code = "\n".join(line[3:] for line in block.splitlines())
        exec(compile(code, str(PAGE), "exec"), namespace)
    return namespace


NAMESPACE = examples()


def subjects() -> list[Subject]:
    found: list[Subject] = [NAMESPACE["deflate"]]
    found.append(Subject("timing", NAMESPACE["Timing"]()))
    found.append(Subject("retired", NAMESPACE["Retired"]("/old")))
    return found


@pytest.mark.parametrize("subject", subjects(), ids=lambda subject: subject.id)
def test_each_example_passes_the_whole_kit(subject: Subject) -> None:
    assert isinstance(subject.wrap, Middleware)
    conformance.check_all(subject)


def test_the_deflate_example_compresses_for_clients_that_accept_it() -> None:
    subject = subjects()[0]
    environ = conformance.make_environ()
    environ["HTTP_ACCEPT_ENCODING"] = "deflate"
    served = conformance.run(
        subject.wrap(conformance.apps.list_app(conformance.Probe())), environ
    )
    assert served.header("Content-Encoding") == "deflate"
    assert subject.decode(served.body) == conformance.BODY
    plain = conformance.run(
        subject.wrap(conformance.apps.list_app(conformance.Probe())),
        conformance.make_environ(),
    )
    assert plain.header("Content-Encoding") is None and plain.body == conformance.BODY


# -- the framework pages show their examples as they are --------------------------

INCLUDE = re.compile(
    r"^\.\. literalinclude:: \.\./(\S+)\n((?:   :.*\n)*)", re.MULTILINE
)
DOCS = PAGE.parent


@pytest.mark.parametrize(
    ("page", "example"),
    [
        ("flask.rst", "examples/flask_app/wsgi.py"),
        ("django.rst", "examples/django_project/demo_site/wsgi.py"),
    ],
)
def test_each_framework_page_includes_its_example(page: str, example: str) -> None:
    # The page's code is the example file itself (which tests/test_frameworks.py
    # runs), so the two cannot drift; its start and end markers must be found.
    text = (DOCS / page).read_text(encoding="utf-8")
    includes = INCLUDE.findall(text)
    assert [path for path, _ in includes] == [example]
    source = (DOCS.parent / example).read_text(encoding="utf-8")
    options = dict(re.findall(r":(start-at|end-before): (.*)", includes[0][1]))
    assert options["start-at"] in source
    shown = source[source.index(options["start-at"]) :]
    if "end-before" in options:
        assert options["end-before"] in shown
        shown = shown[: shown.index(options["end-before"])]
    assert "compose(" in shown  # the stack is what the page shows
    assert ".. code-block:: python" not in text  # no hand-written copy beside it
