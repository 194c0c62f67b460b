"""Command line: ``python -m middleware htpasswd FILE USER``.

``htpasswd`` adds a user to an htpasswd file, or changes their password, with a
bcrypt hash (the file is created if missing). The password is asked for twice on
the terminal, or read as one line from standard input with ``--stdin``.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .passwords import BCRYPT_MAX_BYTES, make_bcrypt


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m middleware")
    commands = parser.add_subparsers(dest="command", required=True)
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
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
