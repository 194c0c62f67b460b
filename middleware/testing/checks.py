"""The checks of the conformance kit: one cell (a style through a subject under a
validator), the whole matrix, and answers a middleware gives itself."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from wsgiref.types import WSGIApplication

from .apps import BODY, Probe
from .careless import REQUEST_TOKEN, TOKEN_HEADER
from .matrix import (
    STYLES,
    VALIDATORS,
    Style,
    Subject,
    decoded,
    sandwich,
    transformed,
)
from .server import CheckFailed, Served, expect, make_environ, run

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


def _lint_warnings() -> list[type[Warning]]:
    """The validators' warning classes: each is an error in a cell."""
    from wsgiref.validate import WSGIWarning

    found: list[type[Warning]] = [WSGIWarning]
    with contextlib.suppress(ImportError):
        from werkzeug.middleware.lint import WSGIWarning as LintWarning

        found.append(LintWarning)
    return found


def check_cell(subject: Subject, style: Style, kind: str) -> None:
    """Run one cell of the matrix and assert everything the kit promises; a
    failure is a :class:`~middleware.testing.server.CheckFailed` naming the check."""
    with unraisable_errors() as unraisable, warnings.catch_warnings():
        # What the validators warn of fails the cell, with or without pytest's
        # filterwarnings = error; what the style provokes on purpose does not.
        for category in _lint_warnings():
            warnings.simplefilter("error", category)
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
    expect(not unexpected, "; ".join(unexpected), "unraisable")


def check_all(subject: Subject) -> None:
    """Every cell of the matrix for *subject*, without pytest: raises
    ``AssertionError`` (naming the cell) at the first that fails."""
    for style in STYLES:
        for kind in style.kinds:
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
        expect(probe.closes == expected, f"closed {probe.closes} times", "close")


def _check_threads(subject: Subject, style: Style, kind: str) -> None:
    """*style.threads* requests at once through one wrapped app: each sees only its
    own response, and every iterable is closed once."""
    probe = Probe()
    wrapped = sandwich(kind, subject, style.make_app(probe))
    served: list[Served] = []
    errors: list[BaseException] = []

    tokens = iter(range(style.threads))
    lock = threading.Lock()

    def one() -> None:  # one request, with its own token
        environ = make_environ(style.method)
        if style.file_wrapper is not None:
            environ["wsgi.file_wrapper"] = style.file_wrapper
        environ.update(subject.environ)
        with lock:
            environ[REQUEST_TOKEN] = str(next(tokens))
        try:
            served.append(run(wrapped, environ))
        except BaseException as exc:  # an assertion of the stand-in server
            errors.append(exc)

    # Daemon threads and one deadline for all: a request that never ends fails
    # the cell in 30 s and does not keep the process alive.
    threads = [threading.Thread(target=one, daemon=True) for _ in range(style.threads)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    expect(not errors, errors, "threads")
    finished = f"{len(served)} of {style.threads} finished"
    expect(len(served) == style.threads, finished, "threads")
    expect(len({id(each.environ) for each in served}) == style.threads, "", "threads")
    for each in served:
        _check_served(subject, style, kind, each)
        # Each response is its own request's: the app sent its token back (a
        # generic subject may filter the header out).
        token, got = each.environ[REQUEST_TOKEN], each.header(TOKEN_HEADER)
        if got is not None or not subject.generic:
            mixed = f"request {token} got the response of {got}"
            expect(got == token, mixed, "threads")
    if style.closes is not None:
        expected = style.closes * style.threads
        closed = f"closed {probe.closes} of {expected}"
        expect(probe.closes == expected, closed, "close")


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
    left = f"{found} objects of the request were left in reference cycles"
    expect(found == 0, left, "cycles")


def _check_served(subject: Subject, style: Style, kind: str, outcome: Served) -> None:
    """The checks every cell makes of what the server saw."""
    # The exception reaches the server, unchanged, unless catching is the job and
    # nothing was sent yet: then a well-formed 500 with an exact length goes out.
    # A generic subject may do either.
    answered = subject.catches_errors and style.caught
    if subject.generic and style.caught:
        answered = outcome.error is None and outcome.status.startswith("500")
    _check_error(subject, style, outcome, answered)
    if answered:
        ok = (
            outcome.status.startswith("500 ")
            if subject.generic
            else (outcome.status == "500 Internal Server Error")
        )
        expect(ok, outcome.status, "status")
        length = outcome.header("Content-Length")
        # Ours send an exact length; PEP 3333 asks only for a body (a length
        # that went out is checked below).
        exact = outcome.body and (subject.generic or length == str(len(outcome.body)))
        sent = f"Content-Length {length} for {len(outcome.body)} bytes"
        expect(exact, sent, "error-answer")
    elif subject.generic and outcome.error is not None and not outcome.headers_sent:
        pass  # the app's error, before any byte: the server answers it
    else:
        expect(outcome.status == style.status, seen_status(outcome, style), "status")
        if style.bodiless:
            # Never transformed: what the app sent, headers included.
            want = style.body if style.method == "HEAD" else b""
            expect(outcome.body == want, seen_body(outcome.body, want), "no-body")
            if style.method == "HEAD":
                # RFC 9110 lets a HEAD leave the length out; ours keep it.
                length = outcome.header("Content-Length")
                kept = length == str(len(BODY)) or (subject.generic and length is None)
                expect(kept, f"Content-Length {length}", "no-body")
        else:
            body = decoded(subject, outcome)
            if (
                subject.generic
                and transformed(subject, outcome)
                and (outcome.error is not None or style.abandon_after is not None)
            ):
                # A coder may hold bytes back (yielding b"") when the stream is
                # cut: what came out must begin the body, no more.
                cut = style.body.startswith(body)
                expect(cut, seen_body(body, style.body), "body")
            else:
                expect(body == style.body, seen_body(body, style.body), "body")

    # A Content-Length that went out is the length of the body that went out.
    length = outcome.header("Content-Length")
    if (
        length is not None
        and outcome.error is None
        and style.method != "HEAD"
        and style.abandon_after is None
    ):
        sent = f"Content-Length {length} for {len(outcome.body)} bytes"
        expect(int(length) == len(outcome.body), sent, "content-length")

    if style.check is not None:
        style.check(subject, kind, outcome)
    if subject.check is not None:
        subject.check(style, outcome)


def _check_error(
    subject: Subject, style: Style, outcome: Served, answered: bool
) -> None:
    """The exception the server saw is the app's (or none when the app raised
    none, or when the subject answered it); a validator's complaint is named so."""
    error = outcome.error
    if answered:
        wanted: bool = error is None
    elif style.error is not None:
        wanted = isinstance(error, style.error)
    else:
        wanted = error is None
    if wanted:
        return
    check = "validators" if _from_validator(error) else "exception"
    if error is None:
        raise CheckFailed(
            f"no exception reached the server; wanted {_names(style.error)}", check
        )
    raise CheckFailed(f"{type(error).__name__}: {error}", check)


def _names(error: Any) -> str:
    classes = error if isinstance(error, tuple) else (error,)
    return " or ".join(cls.__name__ for cls in classes)


def _from_validator(error: BaseException | None) -> bool:
    """*error* is one of the validators' complaints: a lint warning raised as an
    error, or an assertion raised by ``wsgiref.validate`` itself."""
    if isinstance(error, Warning):
        return True
    if not isinstance(error, AssertionError) or error.__traceback__ is None:
        return False
    last = error.__traceback__
    while last.tb_next is not None:
        last = last.tb_next
    where = last.tb_frame.f_code.co_filename
    return where.endswith(os.path.join("wsgiref", "validate.py"))


def seen_status(outcome: Served, style: Style) -> str:
    return (
        f"status {outcome.status or 'never set'!r}, wanted {style.status or 'none'!r}"
    )


def seen_body(body: bytes, want: bytes) -> str:
    return f"{len(body)} bytes {body[:40]!r}, wanted {len(want)} bytes {want[:40]!r}"


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
            left = "a file descriptor was left open"
            expect(open_descriptors() <= before, left, "file-descriptors")
            gc.collect(0)  # what the validators' __del__ say of unclosed iterables
        expect(not unraisable, "; ".join(unraisable), "unraisable")
        check = "validators" if _from_validator(outcome.error) else "exception"
        expect(outcome.error is None, repr(outcome.error), check)
        code = int(outcome.status[:3])
        if request["REQUEST_METHOD"] == "HEAD" or code < 200 or code in (204, 304):
            expect(outcome.body == b"", seen_body(outcome.body, b""), "no-body")
        elif (length := outcome.header("Content-Length")) is not None:
            sent = f"Content-Length {length} for {len(outcome.body)} bytes"
            expect(int(length) == len(outcome.body), sent, "content-length")
        outcomes.append(outcome)
    first = outcomes[0]
    for other in outcomes[1:]:
        expect(other.status == first.status, other.status, "consistent")
        if same_body:
            expect(other.headers == first.headers, other.headers, "consistent")
            expect(other.body == first.body, other.body[:40], "consistent")
    return outcomes[-1]


def cells(subject: Subject) -> list[Any]:
    """The matrix of *subject* as pytest parameters, one per (style, validator)."""
    import pytest

    return [
        pytest.param(subject, style, kind, id=f"{subject.id}-{style.id}-{kind}")
        for style in STYLES
        for kind in style.kinds
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
