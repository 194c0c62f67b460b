"""The option vocabulary: one declaration per kind of option, used by every
middleware's constructor to check its options and by :mod:`middleware.paste` to
convert ini strings, so each rule and its message exist once.

A middleware declares its options once, as a class attribute::

    class Gzip(Compress):
        options = {"level": Count(minimum=1, maximum=9), "min_size": Count(), ...}

and checks each in ``__init__``: ``self.min_size = self.options["min_size"].check(
"min_size", min_size)``. :meth:`Option.check` returns the value to keep (a tuple for
a list, whole seconds for a duration, the canonical spelling of a choice) or raises
``ValueError`` naming the option, what is accepted and the value given.
:meth:`Option.parse` turns an ini string into the Python value that
:meth:`Option.check` then checks, so an ini file and Python code meet the same rule.

This module depends on nothing else in the package.
"""

from __future__ import annotations

import datetime
import importlib
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar

__all__ = [
    "REFUSED",
    "Choice",
    "Count",
    "Dotted",
    "Flag",
    "Names",
    "Option",
    "PathOption",
    "Seconds",
    "Secret",
    "Text",
]

T = TypeVar("T")

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)", re.IGNORECASE)


class Option(Generic[T]):
    """One kind of option. Subclasses set :attr:`expects` and implement
    :meth:`accept` (the Python rule) and :meth:`convert` (the ini string).

    :param none: None is a valid value too (said in the message as ``or None``).
    """

    #: What the message says is accepted: ``"True or False"``.
    expects = "a value"

    def __init__(self, *, none: bool = False) -> None:
        self.none = none

    def check(self, name: str, value: Any) -> T:
        """The value to keep for option *name*, or a ``ValueError`` saying
        ``name: expected ..., got value`` (a value of the wrong type too: the
        message names both what is accepted and what was given)."""
        if value is None and self.none:
            return None  # type: ignore[return-value]
        accepted = self.accept(value)
        if accepted is REFUSED:
            raise ValueError(f"{name}: expected {self.describe()}, got {value!r}")
        result: T = accepted
        return result

    def describe(self) -> str:
        return f"{self.expects} or None" if self.none else self.expects

    def accept(self, value: Any) -> Any:
        """The value to keep, or :data:`REFUSED`."""
        raise NotImplementedError  # pragma: no cover - every kind overrides it

    def parse(self, text: str, here: Path) -> Any:
        """The Python value an ini string means (*here*: the ini file's folder);
        ``ValueError`` saying what was expected when it means none."""
        if self.none and text.strip().lower() in ("", "none"):
            return None
        return self.convert(text, here)

    def convert(self, text: str, here: Path) -> Any:
        return text


#: What :meth:`Option.accept` returns for a value it refuses.
REFUSED: Any = object()


class Flag(Option[bool]):
    """True or False; in ini files ``true``/``false``, ``yes``/``no``, ``on``/``off``,
    ``1``/``0``."""

    expects = "True or False"

    def accept(self, value: Any) -> Any:
        return value if isinstance(value, bool) else REFUSED

    def convert(self, text: str, here: Path) -> bool:
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError("expected true or false (yes/no, on/off, 1/0)")


class Count(Option[int]):
    """A whole number (never a bool) from *minimum*, to *maximum* if given."""

    def __init__(
        self, *, minimum: int = 0, maximum: int | None = None, none: bool = False
    ) -> None:
        super().__init__(none=none)
        self.minimum = minimum
        self.maximum = maximum
        if maximum is None:
            self.expects = f"an int >= {minimum}"
        else:
            self.expects = f"an int from {minimum} to {maximum}"

    def accept(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            return REFUSED
        if value < self.minimum or (self.maximum is not None and value > self.maximum):
            return REFUSED
        return value

    def convert(self, text: str, here: Path) -> int:
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError("expected a whole number") from None


class Seconds(Option[T]):
    """A duration: a number of seconds, or a :class:`datetime.timedelta`; in ini
    files seconds or ``30s``, ``15m``, ``2h``, ``14d``, ``1w``.

    :param positive: 0 is refused (a lifetime, a window); else 0 is allowed.
    :param whole: only whole seconds (kept as an int); else any number (a float).
    """

    def __init__(
        self, *, positive: bool = True, whole: bool = True, none: bool = False
    ) -> None:
        super().__init__(none=none)
        self.positive = positive
        self.whole = whole
        if whole and positive:
            self.expects = "a positive number of seconds (int or timedelta)"
        else:
            self.expects = "a number of seconds " + ("> 0" if positive else ">= 0")

    def accept(self, value: Any) -> Any:
        if isinstance(value, datetime.timedelta):
            total = value.total_seconds()
            value = int(total) if total == int(total) else total
        if isinstance(value, bool) or not isinstance(
            value, int if self.whole else int | float
        ):
            return REFUSED
        if value < 0 or (self.positive and value == 0):
            return REFUSED
        return value

    def convert(self, text: str, here: Path) -> int:
        match = _DURATION.fullmatch(text.strip())
        if match is None:
            raise ValueError("expected a duration: seconds, or 30s, 15m, 2h, 14d, 1w")
        amount, unit = match.groups()
        return round(float(amount) * _UNITS[unit.lower() or "s"])


class Choice(Option[str]):
    """One of *choices*, matched without regard to case; the value kept is the
    choice's own spelling (``"lax"`` gives ``"Lax"``)."""

    def __init__(self, *choices: str, none: bool = False) -> None:
        super().__init__(none=none)
        self.choices = {choice.lower(): choice for choice in choices}
        quoted = [repr(choice) for choice in choices]
        if none:
            self.expects = ", ".join(quoted)
        else:
            self.expects = ", ".join(quoted[:-1]) + " or " + quoted[-1]

    def describe(self) -> str:
        return f"{self.expects} or None" if self.none else self.expects

    def accept(self, value: Any) -> Any:
        if not isinstance(value, str):
            return REFUSED
        return self.choices.get(value.lower(), REFUSED)


class Text(Option[str]):
    """A string; with *pattern*, one that matches it whole (*expects* then says
    what it is, ``"a header name"``)."""

    def __init__(
        self,
        pattern: str | None = None,
        *,
        expects: str = "a string",
        none: bool = False,
    ) -> None:
        super().__init__(none=none)
        self.pattern = re.compile(pattern) if pattern is not None else None
        self.expects = expects

    def accept(self, value: Any) -> Any:
        if not isinstance(value, str):
            return REFUSED
        if self.pattern is not None and not self.pattern.fullmatch(value):
            return REFUSED
        return value


class PathOption(Option[str]):
    """A file system path (``str`` or ``os.PathLike``), kept as a ``str``; in ini
    files relative to the ini file's folder."""

    expects = "a path"

    def accept(self, value: Any) -> Any:
        if isinstance(value, str | os.PathLike):
            text = os.fspath(value)
            return text if isinstance(text, str) and text else REFUSED
        return REFUSED

    def convert(self, text: str, here: Path) -> str:
        if not text.strip():
            raise ValueError("expected a path")
        return str(here / os.path.expanduser(text.strip()))


class Names(Option[tuple[Any, ...]]):
    """A list or tuple (never a bare string, which would be split into letters) of
    items each accepted by *item*; kept as a tuple. In ini files: words separated by
    spaces, commas or new lines."""

    def __init__(
        self,
        item: Callable[[Any], bool] = lambda value: isinstance(value, str),
        *,
        expects: str = "a list of names",
        none: bool = False,
    ) -> None:
        super().__init__(none=none)
        self.item = item
        self.expects = expects

    def accept(self, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return REFUSED
        if not all(self.item(entry) for entry in value):
            return REFUSED
        return tuple(value)

    def convert(self, text: str, here: Path) -> list[str]:
        return words(text)


class Secret(Option[bytes]):
    """A key: ``str`` (encoded as UTF-8) or ``bytes`` of at least *minimum* bytes,
    kept as ``bytes``. Messages never echo it: they give its type or its length."""

    def __init__(self, minimum: int) -> None:
        super().__init__()
        self.minimum = minimum

    def check(self, name: str, value: Any) -> bytes:
        if isinstance(value, str):
            value = value.encode("utf-8")
        if not isinstance(value, bytes):
            raise ValueError(
                f"{name}: expected a str or bytes secret, got {type(value).__name__}"
            )
        if len(value) < self.minimum:
            raise ValueError(
                f"{name}: expected at least {self.minimum} bytes, got {len(value)} "
                "(make one with: python -c "
                "'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return value

    def accept(self, value: Any) -> Any:  # pragma: no cover - check() is its own
        return value


class Dotted(Option[Any]):
    """A Python object (a callable), or in ini files its dotted name
    ``package.module:attribute``; with *many*, a list of them."""

    def __init__(
        self,
        *,
        expects: str = "a callable",
        many: bool = False,
        item: Callable[[Any], bool] = callable,
        none: bool = False,
    ) -> None:
        super().__init__(none=none)
        self.expects = expects
        self.many = many
        self.item = item

    def accept(self, value: Any) -> Any:
        if self.many:
            if not isinstance(value, list | tuple) or not all(map(self.item, value)):
                return REFUSED
            return tuple(value)
        return value if self.item(value) else REFUSED

    def convert(self, text: str, here: Path) -> Any:
        if self.many:
            return [import_dotted(word) for word in words(text)]
        return import_dotted(text)


def words(text: str) -> list[str]:
    """An ini list: the words of *text*, separated by spaces, commas or new lines."""
    return [word for word in re.split(r"[\s,]+", text) if word]


def import_dotted(text: str) -> Any:
    """The object named ``package.module:attribute`` (or ``package.module.attr``)."""
    name = text.strip()
    module, sep, attribute = name.partition(":")
    if not sep:
        module, _, attribute = name.rpartition(".")
    if not module or not attribute:
        raise ValueError("expected a dotted name, package.module:attribute")
    try:
        found: Any = importlib.import_module(module)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import it: {exc}") from None
    return found


def check_all(
    options: dict[str, Option[Any]], values: dict[str, Any], names: Iterable[str]
) -> dict[str, Any]:
    """Check each option of *names* in *values* against its declaration in
    *options*: the checked values, by name (a constructor's one-liner)."""
    return {name: options[name].check(name, values[name]) for name in names}
