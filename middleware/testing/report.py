"""The whole matrix as a result rather than a first failure: every cell run, each
passing or naming the check it failed and what was seen. ``python -m middleware
check`` prints it; :func:`assert_conforms` raises it in a project's own tests."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from wsgiref.types import WSGIApplication

from .checks import check_cell
from .codings import accept_encoding
from .matrix import STYLES, VALIDATORS, Style, Subject
from .server import CheckFailed


@dataclass(frozen=True)
class Cell:
    """One cell's result: the app *style*, the *validator* it ran under
    (``wsgiref``, ``werkzeug`` or ``bare``), and, when it failed, the *check* that
    failed and what was *seen*."""

    style: str
    validator: str
    passed: bool
    check: str | None = None
    seen: str | None = None

    def line(self) -> str:
        """The cell as one line, for a failure report."""
        return f"FAIL {self.style} [{self.validator}] {self.check}: {self.seen}"


def validators() -> list[str]:
    """The validators this process can run: Werkzeug's lint when installed."""
    return [
        kind
        for kind in VALIDATORS
        if kind != "werkzeug" or importlib.util.find_spec("werkzeug") is not None
    ]


def select(patterns: Sequence[str] = ()) -> list[Style]:
    """The styles whose id contains one of *patterns* (every style without any)."""
    if not patterns:
        return list(STYLES)
    return [s for s in STYLES if any(pattern in s.id for pattern in patterns)]


def run_cell(subject: Subject, style: Style, kind: str) -> Cell:
    """One cell, its failure caught and named. What the subject warns of is not
    a failure here (the validators' own warnings still are)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_cell(subject, style, kind)
    except CheckFailed as failed:
        return Cell(style.id, kind, False, failed.check, _short(failed))
    except AssertionError as failed:  # a Subject's or a style's own check
        return Cell(style.id, kind, False, "custom", _short(failed))
    except Exception as crashed:  # the cell could not even run
        seen = f"{type(crashed).__name__}: {crashed}"
        return Cell(style.id, kind, False, "crash", _short(seen))
    return Cell(style.id, kind, True)


def _short(text: object, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def run_matrix(subject: Subject, styles: Iterable[Style] | None = None) -> list[Cell]:
    """Every cell of *styles* (all by default) for *subject*, under every
    validator installed."""
    kinds = validators()
    return [
        run_cell(subject, style, kind)
        for style in (STYLES if styles is None else styles)
        for kind in kinds
        if kind in style.kinds
    ]


def subject_of(
    name: str,
    middleware: Callable[[WSGIApplication], WSGIApplication],
    environ: Mapping[str, str] | None = None,
) -> Subject:
    """A :class:`Subject` for a middleware the kit knows nothing of: requests say
    they accept every coding the kit can undo, each response is decoded by its own
    Content-Encoding, and an error may reach the server or be answered with a 500."""
    request = {"HTTP_ACCEPT_ENCODING": accept_encoding(), **(environ or {})}
    return Subject(name, middleware, generic=True, environ=request)


def table(cells: Sequence[Cell]) -> str:
    """Styles down, validators across: ``ok`` or the check that failed."""
    kinds = list(dict.fromkeys(cell.validator for cell in cells))
    grid: dict[str, dict[str, str]] = {}
    for cell in cells:
        grid.setdefault(cell.style, {})[cell.validator] = (
            "ok" if cell.passed else str(cell.check)
        )
    width = max([len("style"), *(len(style) for style in grid)])
    columns = [
        max([len(kind), *(len(row.get(kind, "")) for row in grid.values())])
        for kind in kinds
    ]
    lines = ["  ".join(["style".ljust(width), *map(str.ljust, kinds, columns)])]
    for style, row in grid.items():
        values = [row.get(kind, "-") for kind in kinds]
        lines.append("  ".join([style.ljust(width), *map(str.ljust, values, columns)]))
    return "\n".join(line.rstrip() for line in lines)


def summary(cells: Sequence[Cell]) -> str:
    failed = [cell for cell in cells if not cell.passed]
    text = f"{len(cells) - len(failed)} of {len(cells)} cells pass"
    checks = sorted({str(cell.check) for cell in failed})
    return text + (f"; failed checks: {', '.join(checks)}" if checks else "")


def as_json(target: str, cells: Sequence[Cell]) -> dict[str, Any]:
    """The result for CI systems: ``target``, ``cells``, ``failures``, ``passed``."""
    return {
        "target": target,
        "validators": list(dict.fromkeys(cell.validator for cell in cells)),
        "cells": [asdict(cell) for cell in cells],
        "failures": [asdict(cell) for cell in cells if not cell.passed],
        "passed": all(cell.passed for cell in cells),
    }


def assert_conforms(
    middleware: Callable[[WSGIApplication], WSGIApplication],
    *,
    environ: Mapping[str, str] | None = None,
    styles: Sequence[str] = (),
    name: str | None = None,
) -> None:
    """Run the whole matrix over *middleware* (``app -> app``) and raise one
    ``AssertionError`` listing every failing cell, with the table; for a project's
    own test suite::

        from middleware.testing import assert_conforms

        def test_my_middleware_conforms():
            assert_conforms(lambda app: MyMiddleware(app, level=6))

    *environ* adds keys to every request (``{"HTTP_AUTHORIZATION": ...}`` for a
    middleware that wants credentials); *styles* keeps the styles whose id
    contains one of these strings. For a middleware the kit should know more of
    (its decoder, that it must catch errors), build a :class:`Subject` and use
    :func:`suite` or :func:`check_all`.
    """
    label = name or str(getattr(middleware, "__name__", type(middleware).__name__))
    chosen = select(styles)
    if not chosen:
        raise ValueError(f"styles: no style matches {list(styles)!r}")
    cells = run_matrix(subject_of(label, middleware, environ), chosen)
    failed = [cell for cell in cells if not cell.passed]
    if failed:
        lines = [cell.line() for cell in failed]
        raise AssertionError(
            "\n".join([f"{label}: {summary(cells)}", *lines, table(cells)])
        )
