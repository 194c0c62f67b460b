"""The checks of the conformance kit: one cell (a style through a subject under a
validator), the whole matrix, and answers a middleware gives itself."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from wsgiref.types import WSGIApplication

from .apps import BODY, Probe
from .matrix import STYLES, VALIDATORS, Style, Subject, sandwich
from .server import Served, expect, make_environ, run

# Both validators' iterator wrappers (Werkzeug's GuardedIterator, wsgiref's
# IteratorWrapper) call iter() on the app's result before they set their ``closed``
# attribute, so when iter() raises, their __del__ raises AttributeError later, at
# whatever garbage collection frees them: the validators' bug, never the subject's.
_VALIDATOR_DEL_BUGS = (
    "AttributeError: 'GuardedIterator' object has no attribute 'closed'",
    "AttributeError: 'IteratorWrapper' object has no attribute 'closed'",
)


@contextlib.contextmanager
def unraisable_errors() -> Iterator[list[str]]:
    """Collect what ``__del__`` methods raise (the validators' "iterator garbage
    collected without being closed"), so a cell fails cleanly instead of pytest
    meeting the error later, in some other test."""
    caught: list[str] = []
    previous = sys.unraisablehook

    def hook(info: Any) -> None:
        caught.append(f"{info.exc_type.__name__}: {info.exc_value} ({info.object!r})")

    sys.unraisablehook = hook
    try:
        yield caught
    finally:
        sys.unraisablehook = previous


def check_cell(subject: Subject, style: Style, kind: str) -> None:
    """Run one cell of the matrix and assert everything the kit promises."""
    with unraisable_errors() as unraisable, warnings.catch_warnings():
        for message in style.lint_allows:
            warnings.filterwarnings("ignore", message)
        try:
            if style.threads > 1:
                _check_threads(subject, style, kind)
            else:
                _check_cell(subject, style, kind)
                if kind == "bare" and style.error is None:
                    _check_no_cycle(subject, style)
        finally:
            gc.collect()
    unexpected = [
        text for text in unraisable if not text.startswith(_VALIDATOR_DEL_BUGS)
    ]
    expect(not unexpected, unexpected)


def check_all(subject: Subject) -> None:
    """Every cell of the matrix for *subject*, without pytest: raises
    ``AssertionError`` (naming the cell) at the first that fails."""
    for style in STYLES:
        for kind in VALIDATORS:
            try:
                check_cell(subject, style, kind)
            except AssertionError as exc:
                raise AssertionError(f"{subject.id}-{style.id}-{kind}: {exc}") from exc


def _serve(
    subject: Subject,
    style: Style,
    kind: str,
    app: WSGIApplication,
    keep_result: bool = True,
) -> Served:
    environ = make_environ(style.method)
    if style.file_wrapper is not None:
        environ["wsgi.file_wrapper"] = style.file_wrapper
    environ.update(subject.environ)
    return run(
        sandwich(kind, subject, app),
        environ,
        abandon_after=style.abandon_after,
        keep_result=keep_result,
    )


def _check_cell(subject: Subject, style: Style, kind: str) -> None:
    probe = Probe()
    served = _serve(subject, style, kind, style.make_app(probe))
    _check_served(subject, style, kind, served)
    # close() of the app's iterable ran exactly once.
    if style.closes is not None:
        expected = style.closes
        if style.validators_lose_iterable and kind != "bare":
            expected = 0
        expect(probe.closes == expected, f"closed {probe.closes} times")


def _check_threads(subject: Subject, style: Style, kind: str) -> None:
    """*style.threads* requests at once through one wrapped app: each sees only its
    own response, and every iterable is closed once."""
    probe = Probe()
    wrapped = sandwich(kind, subject, style.make_app(probe))
    served: list[Served] = []
    errors: list[BaseException] = []

    def one() -> None:
        environ = make_environ(style.method)
        if style.file_wrapper is not None:
            environ["wsgi.file_wrapper"] = style.file_wrapper
        environ.update(subject.environ)
        try:
            served.append(run(wrapped, environ))
        except BaseException as exc:  # an assertion of the stand-in server
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(style.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    expect(not errors, errors)
    expect(len(served) == style.threads, f"{len(served)} of {style.threads} finished")
    expect(len({id(each.environ) for each in served}) == style.threads)
    for each in served:
        _check_served(subject, style, kind, each)
    if style.closes is not None:
        expected = style.closes * style.threads
        expect(probe.closes == expected, f"closed {probe.closes} of {expected}")


def _check_no_cycle(subject: Subject, style: Style) -> None:
    """With the cyclic collector off, a finished response leaves nothing for it:
    every object of the request is freed by reference counting alone."""
    gc.collect()
    gc.disable()
    try:
        probe = Probe()
        app = style.make_app(probe)
        served = _serve(subject, style, "bare", app, keep_result=False)
        del served, app, probe
        found = gc.collect()
    finally:
        gc.enable()
    expect(found == 0, f"{found} objects of the request were left in reference cycles")


def _check_served(subject: Subject, style: Style, kind: str, outcome: Served) -> None:
    """The checks every cell makes of what the server saw."""
    # The exception reaches the server, unchanged, unless catching is the job and
    # nothing was sent yet: then a well-formed 500 with an exact length goes out.
    answered = subject.catches_errors and style.caught
    if answered:
        expect(outcome.error is None, repr(outcome.error))
        expect(outcome.status == "500 Internal Server Error", outcome.status)
        length = outcome.header("Content-Length")
        expect(outcome.body and length == str(len(outcome.body)), length)
    elif style.error is not None:
        expect(isinstance(outcome.error, style.error), repr(outcome.error))
    else:
        expect(outcome.error is None, repr(outcome.error))

    if not answered:
        expect(outcome.status == style.status, outcome.status)
        if style.bodiless:
            # Never transformed: what the app sent, headers included.
            expect(outcome.body == (style.body if style.method == "HEAD" else b""))
            if style.method == "HEAD":
                expect(outcome.header("Content-Length") == str(len(BODY)))
        elif subject.transforms:
            expect(subject.decode(outcome.body) == style.body)
        else:
            expect(outcome.body == style.body)

    # A Content-Length that went out is the length of the body that went out.
    length = outcome.header("Content-Length")
    if (
        length is not None
        and outcome.error is None
        and style.method != "HEAD"
        and style.abandon_after is None
    ):
        expect(int(length) == len(outcome.body))

    if style.check is not None:
        style.check(subject, kind, outcome)
    if subject.check is not None:
        subject.check(style, outcome)


def open_descriptors() -> int:
    """How many file descriptors this process has open (Linux)."""
    return len(os.listdir("/proc/self/fd"))


def answered(
    subject: Subject,
    app: WSGIApplication,
    environ: Mapping[str, Any],
    same_body: bool = True,
) -> Served:
    """Serve one request that *subject*'s middleware answers itself, the three ways
    of the matrix, and check the response: the validators report nothing, nothing
    raises, the three agree on status, headers and (when *same_body*) body, a
    Content-Length matches the body, HEAD, 1xx, 204 and 304 have none, and every
    file descriptor opened for it is closed. Returns the bare run's outcome."""
    outcomes = []
    # Counted without a garbage collection: a file closed only by the collector
    # is a leak. (Other tests' garbage collected meanwhile can only lower it.)
    before = open_descriptors()
    for kind in VALIDATORS:
        request = make_environ(environ.get("REQUEST_METHOD", "GET"))
        request.update(environ)
        with unraisable_errors() as unraisable, warnings.catch_warnings():
            # Two warnings of Werkzeug's lint that RFC 9110 contradicts: a HEAD
            # response has a Content-Length and no body (section 9.3.2), and a
            # Location may be a relative reference (section 10.2.2).
            warnings.filterwarnings("ignore", "Content-Length and the number of bytes")
            warnings.filterwarnings("ignore", "Absolute URLs required")
            outcome = run(sandwich(kind, subject, app), request)
            expect(open_descriptors() <= before, "a file descriptor was left open")
            gc.collect(0)  # what the validators' __del__ say of unclosed iterables
        expect(not unraisable, unraisable)
        expect(outcome.error is None, repr(outcome.error))
        code = int(outcome.status[:3])
        if request["REQUEST_METHOD"] == "HEAD" or code < 200 or code in (204, 304):
            expect(outcome.body == b"", outcome.body[:80])
        elif (length := outcome.header("Content-Length")) is not None:
            expect(int(length) == len(outcome.body), (length, len(outcome.body)))
        outcomes.append(outcome)
    first = outcomes[0]
    for other in outcomes[1:]:
        expect(other.status == first.status)
        if same_body:
            expect(other.headers == first.headers)
            expect(other.body == first.body)
    return outcomes[-1]


def cells(subject: Subject) -> list[Any]:
    """The matrix of *subject* as pytest parameters, one per (style, validator)."""
    import pytest

    return [
        pytest.param(subject, style, kind, id=f"{subject.id}-{style.id}-{kind}")
        for style in STYLES
        for kind in VALIDATORS
    ]


def suite(*subjects: Subject) -> Callable[[Subject, Style, str], None]:
    """A parametrized pytest test function running the whole matrix for
    *subjects*; assign it to a ``test_`` name in a test module."""
    import pytest

    @pytest.mark.parametrize(
        ("subject", "style", "kind"),
        [cell for subject in subjects for cell in cells(subject)],
    )
    def test_conformance(subject: Subject, style: Style, kind: str) -> None:
        check_cell(subject, style, kind)

    return test_conformance
