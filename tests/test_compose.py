"""compose(): order, accepted layers, errors naming the position; describe()."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from middleware import (
    AccessLog,
    BasicAuth,
    ErrorCatcher,
    Gzip,
    Session,
    StaticFiles,
    compose,
    describe,
)
from middleware import testing as conformance
from middleware.testing import Subject, make_environ, run
from middleware.testing.apps import text_headers
from middleware.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

from .sample_middleware import CloseRecorder, Tag, Upper

STATIC = Path(__file__).parent / "fixtures" / "static"
QUIET = logging.getLogger("tests.compose.quiet")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


def whole_stack(app: WSGIApplication) -> WSGIApplication:
    """Every middleware of the package, in the documented order, around *app*: the
    kit's styles through it find what one layer alone cannot (cycles between
    proxies, state shared between threads)."""
    return compose(
        app,
        AccessLog(logger=QUIET),
        ErrorCatcher(),
        Gzip(),
        BasicAuth(users={"alice": "{SHA}+vBmQBJGRZF2yvGajEFBlMp9zFI="}, exempt=["/"]),
        Session(secret="s" * 32),
        StaticFiles(STATIC),
    )


# The whole kit through the whole stack (8 threads at once among the styles).
test_conformance = conformance.suite(
    Subject("whole-stack", whole_stack, catches_errors=True),
    Subject(
        "access-log+errors",
        lambda app: compose(app, AccessLog(logger=QUIET), ErrorCatcher()),
        catches_errors=True,
    ),
)


def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", text_headers())
    return [environ.get("REMOTE_ADDR", "").encode()]


def marker(name: str, seen: list[str]) -> Any:
    """A plain closure layer that records the order requests meet it."""

    def layer(inner: WSGIApplication) -> WSGIApplication:
        def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
            seen.append(name)
            return inner(environ, start_response)

        return wrapped

    return layer


def test_first_listed_layer_is_outermost() -> None:
    seen: list[str] = []
    stack = compose(app, marker("a", seen), marker("b", seen), marker("c", seen))
    run(stack)
    assert seen == ["a", "b", "c"]


def test_compose_equals_nesting_by_hand() -> None:
    tag, upper = Tag(tag="outer"), Upper()
    stack: Any = compose(app, tag, upper)
    assert stack.middleware is tag
    assert stack.app.middleware is upper
    assert stack.app.app is app


def test_compose_with_no_layers_returns_the_app_itself() -> None:
    assert compose(app) is app


def test_third_party_layers_are_accepted() -> None:
    stack = compose(app, Upper(), lambda inner: ProxyFix(inner, x_for=1))
    environ = make_environ()
    environ["HTTP_X_FORWARDED_FOR"] = "203.0.113.9"
    assert run(stack, environ).body == b"203.0.113.9"


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        pytest.param(
            (Tag(), "gzip"),
            r"layer 2 of 2 is 'gzip', which is not callable",
            id="not-callable",
        ),
        pytest.param(
            (Tag, Upper()),
            r"layer 1 of 2 is the class Tag; pass an instance, Tag\(\.\.\.\)",
            id="class-not-instance",
        ),
        pytest.param(
            (lambda inner: None, Tag()),
            r"layer 1 of 2 \(<function .*\) returned None, which is not a WSGI",
            id="returns-non-callable",
        ),
    ],
)
def test_bad_layers_are_type_errors_naming_the_position(
    layers: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        compose(app, *layers)


def test_non_callable_app_is_refused() -> None:
    with pytest.raises(TypeError, match="takes the WSGI application first"):
        compose("app", Tag())  # type: ignore[arg-type]


def test_describe_lists_layers_outermost_first() -> None:
    stack = compose(
        app, Tag(tag="x"), lambda inner: ProxyFix(inner), CloseRecorder(), Upper()
    )
    lines = describe(stack).splitlines()
    assert lines[:4] == [
        "1. Tag(tag='x')",
        "2. ProxyFix",
        "3. CloseRecorder()",
        "4. Upper()",
    ]
    assert lines[4].startswith("app: <function app at ")


def test_describe_a_bare_app_and_a_cycle() -> None:
    assert describe(app).startswith("app: <function app")

    class Loop:
        def __init__(self) -> None:
            self.app: Any = self

        def __call__(self, environ: Any, start_response: Any) -> Any:
            return []

    loop = Loop()
    assert describe(loop).splitlines()[0] == "1. Loop"
