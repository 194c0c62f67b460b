"""``python -m middleware check``: the conformance matrix over anyone's middleware.

``check TARGET`` loads ``module:attribute`` (from the current directory first, as
gunicorn does) and makes a middleware of it:

- a callable taking one required argument is the middleware itself (``app ->
  app``: a function, a configured instance of ours, a class like Paste's
  ``GzipMiddleware(app)``);
- a callable taking none is a factory of one (``Gzip``, ``make_middleware``);
- ``--option key=value`` pairs go to the factory (``Gzip --option min_size=0``),
  or, when it takes the app first, after the app (``AuthBasicHandler --option
  realm=x --option authfunc=...`` is better written as a small wrapper). Values
  are Python literals (``6``, ``True``, ``'x'``, ``("a", "b")``) or else strings;
  a PasteDeploy ``filter_factory(global_conf, **local_conf)`` gets them as strings.
- ``--environ KEY=VALUE`` values are strings, as written.

``check --ini FILE [--name NAME]`` checks a PasteDeploy ``[pipeline:NAME]``'s
filters, composed in order (its app is replaced by the kit's), or one
``[filter:NAME]``.

Every style of :mod:`middleware.testing` runs through the target under
``wsgiref.validate`` on both sides, under Werkzeug's lint (when installed) and
bare. Exit status: 0 when every cell passes, 1 when any fails, 2 when the target
cannot be loaded (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import ast
import configparser
import contextlib
import functools
import importlib
import inspect
import io
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from .matrix import Style
from .report import as_json, run_matrix, select, subject_of, summary, table

Middleware = Callable[[WSGIApplication], WSGIApplication]


class TargetError(Exception):
    """The target cannot be loaded or made into a middleware: one line."""


def _probe_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def parse_options(pairs: Sequence[str], flag: str) -> dict[str, Any]:
    """``key=value`` pairs, the values as they were written."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise TargetError(f"{flag}: expected key=value, got {pair!r}")
        options[key.strip()] = raw
    return options


def literal_options(pairs: Sequence[str], flag: str) -> dict[str, Any]:
    """``key=value`` pairs whose values are Python literals, or else strings."""
    options = parse_options(pairs, flag)
    for key, raw in options.items():
        try:
            options[key] = ast.literal_eval(raw)
        except Exception:  # not a literal (or one that cannot be built): text
            options[key] = raw
    return options


def _required(obj: Callable[..., Any]) -> list[str] | None:
    """The names of *obj*'s required positional parameters (None: unknown)."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [
        p.name
        for p in signature.parameters.values()
        if p.default is p.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def _binds(obj: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    try:
        inspect.signature(obj).bind(*args, **kwargs)
    except TypeError:
        return False
    except ValueError:  # no signature: let the call decide
        return True
    return True


def as_middleware(obj: Any, options: dict[str, Any], label: str) -> Middleware:
    """*obj* (the middleware, a factory of one, a class taking the app first, or a
    PasteDeploy filter factory) made into ``app -> app``, checked by wrapping an
    app once."""
    if not callable(obj):
        raise TargetError(f"{label} is not callable (a {type(obj).__name__})")
    required = _required(obj)
    if required and required[0] == "global_conf":  # filter_factory(global_conf, **kw)
        text = {key: str(value) for key, value in options.items()}
        return _wrapping(_call(obj, label, {}, **text), label)
    if options or required == []:
        if _binds(obj, **options):
            # A factory: Gzip(min_size=0), make_middleware(). What it raises is
            # its own error; what it made may fail to wrap an app when the app
            # was an optional argument (Mw(app=None, ...)): then obj is the one.
            made = _call(obj, label, **options)
            try:
                return _wrapping(made, label)
            except TargetError:
                if not _binds(obj, _probe_app, **options):
                    raise
        if _binds(obj, _probe_app, **options):
            return _wrapping(functools.partial(obj, **options), label)
        given = ", ".join(options) or "no options"
        raise TargetError(f"{label} does not take {given}: {_signature(obj)}")
    if required is None or len(required) == 1:
        return _wrapping(obj, label)
    raise TargetError(
        f"{label} takes {len(required)} arguments {_signature(obj)}: give all "
        "but the app with --option name=value, or write a wrapper app -> app"
    )


def _wrapping(middleware: Any, label: str) -> Middleware:
    """*middleware*, once it has wrapped an app into something callable."""
    if not callable(middleware):
        kind = type(middleware).__name__
        raise TargetError(f"{label}() gave a {kind}, not a middleware")
    wrapped = _call(middleware, f"{label} wrapping an app", _probe_app)
    if not callable(wrapped):
        kind = type(wrapped).__name__
        raise TargetError(f"{label} is not a middleware: wrapping an app gave a {kind}")
    checked: Middleware = middleware
    return checked


def _signature(obj: Callable[..., Any]) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def _call(obj: Callable[..., Any], label: str, *args: Any, **kwargs: Any) -> Any:
    """Call the target's code: whatever it raises (SystemExit included: a module
    that runs a command line as it is imported) is one line, not an exit."""
    try:
        return obj(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise TargetError(f"{label} raised {type(exc).__name__}: {exc}") from exc


def load_target(spec: str, options: dict[str, Any]) -> Middleware:
    """``module:attribute`` (dotted attributes allowed) made into a middleware."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise TargetError(f"TARGET is module:attribute, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # ImportError, the module raising or exiting
        raise TargetError(
            f"cannot import {module_name}: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        obj = functools.reduce(getattr, attribute.split("."), module)
    except AttributeError as exc:
        raise TargetError(f"{module_name} has no {attribute}") from exc
    except Exception as exc:  # a property that raises
        raise TargetError(
            f"{spec} raised {type(exc).__name__} when looked up: {exc}"
        ) from exc
    return as_middleware(obj, options, spec)


def load_ini(path: Path, name: str) -> Middleware:
    """The filters of ``[pipeline:NAME]`` composed in order, or ``[filter:NAME]``."""
    try:
        from paste.deploy import loadfilter
    except ImportError as exc:
        raise TargetError("--ini needs PasteDeploy: pip install PasteDeploy") from exc
    if not path.is_file():
        raise TargetError(f"{path}: no such file")
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError, OSError) as exc:
        raise TargetError(f"{path}: {exc}") from exc
    uri = f"config:{path.resolve()}"
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # as serve does: modules next to the ini
    if parser.has_section(f"pipeline:{name}"):
        names = parser.get(f"pipeline:{name}", "pipeline", fallback="").split()[:-1]
        if not names:
            raise TargetError(f"{path}: [pipeline:{name}] has no filters")
    elif parser.has_section(f"filter:{name}"):
        names = [name]
    else:
        raise TargetError(f"{path}: no [pipeline:{name}] or [filter:{name}] section")
    filters = [_call(loadfilter, f"[filter:{each}]", uri, name=each) for each in names]

    def pipeline(app: WSGIApplication) -> WSGIApplication:
        for layer in reversed(filters):
            app = layer(app)
        return app

    return as_middleware(pipeline, {}, f"{path} [{name}]")


def add_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("target", nargs="?", metavar="TARGET", help="module:attribute")
    command.add_argument("--ini", type=Path, help="a PasteDeploy ini file")
    command.add_argument(
        "--name", default="main", help="with --ini: the pipeline or filter (main)"
    )
    command.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="an argument for the target (repeatable)",
    )  # fmt: skip
    command.add_argument(
        "--environ", action="append", default=[], metavar="KEY=VALUE",
        help="an environ key for every request, e.g. HTTP_AUTHORIZATION=... "
        "(repeatable)",
    )  # fmt: skip
    command.add_argument(
        "-k", dest="styles", action="append", default=[], metavar="STYLE",
        help="only the styles whose name contains STYLE (repeatable)",
    )  # fmt: skip
    command.add_argument("--json", action="store_true", help="the result as JSON")


def check(args: argparse.Namespace) -> int:
    """Run the command; return its exit status."""
    # What the target prints, logs or warns of while the styles misbehave on
    # purpose is noise here (and would spoil --json): standard output and error
    # are set aside while it is loaded and run, a handler that drops log records
    # keeps AccessLog's fallback quiet, and sys.path is put back afterwards.
    quiet = logging.NullHandler()
    path = list(sys.path)
    with contextlib.ExitStack() as stack:
        stack.callback(sys.path.__setitem__, slice(None), path)
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        try:
            label, middleware, environ, styles = _load(args)
        except TargetError as exc:
            failed: TargetError | None = exc
        else:
            failed = None
            logging.getLogger().addHandler(quiet)  # after the target's own set-up
            stack.callback(logging.getLogger().removeHandler, quiet)
            cells = run_matrix(subject_of(label, middleware, environ), styles)
    if failed is not None:
        print(f"error: {failed}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(as_json(label, cells), indent=2))
    else:
        for cell in cells:
            if not cell.passed:
                print(cell.line())
        print(f"\n{label}: {summary(cells)}\n")
        print(table(cells))
    return 0 if all(cell.passed for cell in cells) else 1


def _load(
    args: argparse.Namespace,
) -> tuple[str, Middleware, dict[str, str], list[Style]]:
    if (args.target is None) == (args.ini is None):
        raise TargetError("give a TARGET (module:attribute) or --ini FILE")
    environ = parse_options(args.environ, "--environ")  # as written: strings
    if args.ini is not None:
        if args.option:
            raise TargetError("--option goes with a TARGET, not with --ini")
        label = f"{args.ini} [{args.name}]"
        middleware = load_ini(args.ini, args.name)
    else:
        label = args.target
        options = literal_options(args.option, "--option")
        middleware = load_target(args.target, options)
    styles = select(args.styles)
    if not styles:
        raise TargetError(f"-k: no style matches {args.styles}")
    return label, middleware, environ, styles
