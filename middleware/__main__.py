"""Command line: ``python -m middleware serve CONFIG.ini``, ``python -m
middleware htpasswd FILE USER`` and ``python -m middleware check TARGET`` (the
conformance matrix over a middleware: :mod:`middleware.testing.command`).

``serve`` loads an app or pipeline from a PasteDeploy ini file and serves it: with
the ini's ``[server:main]`` when it has one (``--host`` and ``--port`` override its
address), else with waitress on 127.0.0.1:8080. Logging is set up from the ini's
``[loggers]`` sections when present, else every INFO line (access lines included)
goes to standard error. The ini file's directory is put on ``sys.path``, so
``use = call:myapp:make_app`` finds a module next to it. Ctrl-C (or SIGTERM) stops
it cleanly. Before serving it prints, on standard error, the address it listens
on and the stack it built, outermost layer first (:func:`middleware.describe`). A
missing file, a missing section or a factory error prints one line and exits with
status 2.

``htpasswd`` adds a user to an htpasswd file, or changes their password, with a
bcrypt hash (the file is created if missing). The password is asked for twice on
the terminal, or read as one line from standard input with ``--stdin``.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import getpass
import logging
import logging.config
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from .auth.passwords import BCRYPT_MAX_BYTES, make_bcrypt
from .compose import describe
from .testing.command import add_arguments as add_check_arguments
from .testing.command import check


def htpasswd(path: Path, user: str, password: str, rounds: int = 12) -> bool:
    """Set *user*'s password in the htpasswd file at *path* (a bcrypt hash), keeping
    every other line; the file is replaced atomically. True when the user was new."""
    if not user or ":" in user or any(c.isspace() for c in user):
        raise ValueError(f"user: no ':' or spaces allowed, got {user!r}")
    entry = f"{user}:{make_bcrypt(password.encode('utf-8'), rounds)}"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    new = True
    for index, line in enumerate(lines):
        if line.split(":", 1)[0] == user and not line.startswith("#"):
            lines[index] = entry
            new = False
            break
    else:
        lines.append(entry)
    handle, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=".htpasswd.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o777)
        else:
            os.chmod(temporary, 0o640)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return new


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("New password: ")
    if getpass.getpass("Re-type new password: ") != password:
        raise ValueError("the passwords do not match")
    return password


class _Stop(Exception):
    """A start-up problem to report in one line (exit status 2)."""


def _load(config: Path, name: str) -> tuple[Any, Any]:
    """The app (or pipeline) *name* of *config*, and its server context or None."""
    from paste.deploy import loadapp
    from paste.deploy.loadwsgi import SERVER, loadcontext

    if not config.is_file():
        raise _Stop(f"{config}: no such file")
    uri = f"config:{config.resolve()}"
    here = str(config.resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        app = loadapp(uri, name=name)
    except (LookupError, ValueError, TypeError, ImportError, OSError) as exc:
        message = str(exc).replace("\n", " ")
        raise _Stop(f"{config}: {message}") from None
    parser = configparser.RawConfigParser(strict=False)
    parser.read(config, encoding="utf-8")
    server = None
    if parser.has_section("server:main"):
        try:
            server = loadcontext(SERVER, uri, name="main")
        except (LookupError, ValueError, ImportError) as exc:
            raise _Stop(f"{config}: [server:main]: {exc}") from None
    return app, server


def _setup_logging(config: Path) -> None:
    parser = configparser.RawConfigParser(strict=False)
    parser.read(config, encoding="utf-8")
    if parser.has_section("loggers"):
        here = str(config.resolve().parent)
        logging.config.fileConfig(
            config,
            defaults={"here": here, "__file__": str(config.resolve())},
            disable_existing_loggers=False,
        )
    else:
        logging.basicConfig(level=logging.INFO, format="%(message)s")


def _address(server: Any, host: str | None, port: int | None) -> str:
    """Where the server will listen, as URLs: what a user opens."""
    if server is None:
        return f"http://{host or '127.0.0.1'}:{port or 8080}"
    conf = server.local_conf
    listen = conf.get("listen")
    if listen:
        return " ".join(f"http://{where}" for where in listen.split())
    return f"http://{conf.get('host', '0.0.0.0')}:{conf.get('port', '8080')}"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(config: Path, name: str, host: str | None, port: int | None) -> int:
    """``python -m middleware serve``: load, log, serve until Ctrl-C or SIGTERM."""
    try:
        if config.is_file():
            _setup_logging(config)
        app, server = _load(config, name)
        if server is not None:
            if host is not None or port is not None:
                server.local_conf.pop("listen", None)
                server.local_conf["host"] = host or "127.0.0.1"
                server.local_conf["port"] = str(port or 8080)
            runner = server.create()
        else:
            import waitress

            def runner(app: Any) -> None:
                waitress.serve(app, host=host or "127.0.0.1", port=port or 8080)

    except _Stop as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, configparser.Error, KeyError) as exc:  # logging sections
        print(f"error: {config}: {exc}", file=sys.stderr)
        return 2
    print(
        f"serving {_address(server, host, port)}, the stack outermost first:",
        file=sys.stderr,
    )
    print(describe(app), file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _terminate)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C, or SIGTERM above
        runner(app)
    print("stopped", file=sys.stderr)
    return 0


def _htpasswd(args: argparse.Namespace) -> int:
    try:
        if not 4 <= args.rounds <= 31:
            raise ValueError(f"--rounds: expected 4 to 31, got {args.rounds}")
        password = _read_password(args.stdin)
        if not password:
            raise ValueError("the password is empty")
        if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
            raise ValueError(
                f"the password is over {BCRYPT_MAX_BYTES} bytes (bcrypt's limit)"
            )
        new = htpasswd(args.file, args.user, password, args.rounds)
    except (ValueError, OSError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    action = "Adding" if new else "Updating"
    print(f"{action} password for user {args.user} in {args.file}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m middleware")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser(
        "serve", help="serve an app or pipeline from a PasteDeploy ini file"
    )
    command.add_argument("config", type=Path, metavar="CONFIG.ini")
    command.add_argument(
        "--app", default="main", help="the app or pipeline to serve (default main)"
    )
    command.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    command.add_argument("--port", type=int, help="port to listen on (default 8080)")
    command = commands.add_parser(
        "htpasswd", help="add a user to an htpasswd file, or change their password"
    )
    command.add_argument("file", type=Path)
    command.add_argument("user")
    command.add_argument(
        "--stdin", action="store_true", help="read the password from stdin"
    )
    command.add_argument(
        "--rounds", type=int, default=12, help="bcrypt cost, 4 to 31 (default 12)"
    )
    command = commands.add_parser(
        "check",
        help="run the conformance matrix over a middleware or an ini pipeline",
        description="Run every app style of middleware.testing through a middleware "
        "under wsgiref.validate, Werkzeug's lint and bare; exit 0 when every cell "
        "passes, 1 when any fails, 2 when the target cannot be loaded.",
    )
    add_check_arguments(command)
    args = parser.parse_args(argv)
    if args.command == "check":
        return check(args)
    if args.command == "serve":
        return serve(args.config, args.app, args.host, args.port)
    return _htpasswd(args)


if __name__ == "__main__":
    sys.exit(main())
