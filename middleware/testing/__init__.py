"""The conformance kit: every middleware's tests run it, and so can yours.

A matrix of app styles (DESIGN.md, "Testing: the conformance matrix") against one set
of checks, each cell run three ways: inside ``wsgiref.validate.validator`` on both
sides of the middleware, inside Werkzeug's ``LintMiddleware`` on both sides (the two
do not stack with each other), and bare, where identity checks are possible (a
``wsgi.file_wrapper`` result handed on as the same object).

A middleware's test module adopts the kit with one line (pytest)::

    from middleware import testing

    test_conformance = testing.suite(testing.Subject("gzip", Gzip(), decode=gunzip))

or, without pytest, runs every cell itself with :func:`check_all`. Install the
``testing`` extra (pytest and Werkzeug, whose lint is the second validator).

Checks in every cell: the validators report nothing (their warnings are errors under
pytest's ``filterwarnings = error``); the app's iterable was closed exactly once;
the body that comes out, decoded where the middleware encodes, is what went in; the
final status is right; the exception, if any, reaches the server unless the subject
catches errors; a Content-Length that went out matches the body; HEAD, 204 and 304
are never transformed.

A middleware that answers requests itself (static files, auth) checks each kind of
answer with :func:`answered`: the same validators, an exact Content-Length, no body
where none is allowed, and no file descriptor left open.
"""

from __future__ import annotations

from . import apps
from .apps import BODY, AppError, Probe
from .checks import answered, cells, check_all, check_cell, suite
from .matrix import STYLES, VALIDATORS, Style, Subject, sandwich
from .report import Cell, assert_conforms, run_matrix
from .server import CheckFailed, Served, make_environ, run

__all__ = [
    "BODY",
    "STYLES",
    "VALIDATORS",
    "apps",
    "AppError",
    "Cell",
    "CheckFailed",
    "Probe",
    "Served",
    "Style",
    "Subject",
    "answered",
    "assert_conforms",
    "cells",
    "check_all",
    "check_cell",
    "make_environ",
    "run",
    "run_matrix",
    "sandwich",
    "suite",
]
