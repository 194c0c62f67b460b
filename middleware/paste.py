"""PasteDeploy filter factories: every middleware usable from an ini pipeline.

.. code-block:: ini

   [pipeline:main]
   pipeline = access_log errors gzip static app

   [filter:gzip]
   use = egg:wsgi-middleware-toolkit#gzip
   level = 6

The factories are registered as ``paste.filter_factory`` entry points named
``gzip``, ``compress``, ``session``, ``basic_auth``, ``access_log``, ``static`` and
``errors`` (``use = egg:wsgi-middleware-toolkit#NAME``), and can be named directly
(``use = call:middleware.paste:NAME``).

Each option is converted from its ini string by its declared kind: ``bool``
(``true``/``false``, ``yes``/``no``, ``on``/``off``, ``1``/``0``), ``int``,
``float``, a list (words separated by spaces, commas or new lines), a path
(relative to the ini file's directory, ``%(here)s``), a duration (seconds, or a
number with ``s``, ``m``, ``h``, ``d`` or ``w``), or ``none`` for options that may be
None. A value that does not convert, an unknown key, or a value the middleware
refuses is a :class:`ValueError` naming the section, the key and the value.

Secrets stay out of ini files: ``secret_env = SESSION_SECRET`` reads the session
secret from that environment variable (``fallback_secrets_env`` likewise, a list of
variable names).
"""

from __future__ import annotations

import configparser
import importlib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .access_log import AccessLog
from .auth import BasicAuth
from .compress import Compress, Gzip
from .errors import ErrorCatcher
from .proxy import Middleware
from .session import MemoryStore, RedisStore, Session, SQLiteStore, Store
from .static import StaticFiles

__all__ = [
    "FACTORIES",
    "access_log",
    "basic_auth",
    "compress",
    "errors",
    "gzip",
    "session",
    "static",
]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)", re.IGNORECASE)


class _Ini:
    """Where options come from: the ini file's directory, for relative paths."""

    def __init__(self, global_conf: Mapping[str, str]) -> None:
        self.here = Path(global_conf.get("here") or os.getcwd())


# -- converters: (the ini string, the context) -> the option's value -----------------

Converter = Callable[[str, _Ini], Any]


def text(value: str, ini: _Ini) -> str:
    return value


def boolean(value: str, ini: _Ini) -> bool:
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("expected true or false (yes/no, on/off, 1/0)")


def integer(value: str, ini: _Ini) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError("expected a whole number") from None


def number(value: str, ini: _Ini) -> float:
    try:
        return float(value.strip())
    except ValueError:
        raise ValueError("expected a number") from None


def words(value: str, ini: _Ini) -> list[str]:
    return [word for word in re.split(r"[\s,]+", value) if word]


def path(value: str, ini: _Ini) -> str:
    if not value.strip():
        raise ValueError("expected a path")
    return str(ini.here / os.path.expanduser(value.strip()))


def duration(value: str, ini: _Ini) -> int:
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise ValueError("expected a duration: seconds, or 30s, 15m, 2h, 14d, 1w")
    amount, unit = match.groups()
    return round(float(amount) * _UNITS[unit.lower() or "s"])


def optional(convert: Converter) -> Converter:
    """*convert*, or None for ``none`` (or an empty value)."""

    def converter(value: str, ini: _Ini) -> Any:
        if value.strip().lower() in ("", "none"):
            return None
        return convert(value, ini)

    return converter


def dotted(value: str, ini: _Ini) -> Any:
    """An object named ``package.module:attribute`` (or ``package.module.attr``)."""
    name = value.strip()
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


def dotted_list(value: str, ini: _Ini) -> list[Any]:
    return [dotted(word, ini) for word in words(value, ini)]


def environment(value: str, ini: _Ini) -> str:
    """The value of the environment variable named *value*."""
    name = value.strip()
    secret = os.environ.get(name)
    if not secret:
        raise ValueError(f"the environment variable {name} is not set")
    return secret


def environment_list(value: str, ini: _Ini) -> list[str]:
    return [environment(name, ini) for name in words(value, ini)]


def levels(value: str, ini: _Ini) -> int | dict[str, int]:
    """Compress's level: one number, or ``br:5 gzip:6`` per coding."""
    if ":" not in value:
        return integer(value, ini)
    result = {}
    for word in words(value, ini):
        coding, _, level = word.partition(":")
        result[coding] = integer(level, ini)
    return result


def pairs(value: str, ini: _Ini) -> dict[str, str]:
    """Lines of ``key value`` (StaticFiles's content_types: ``.gltf
    model/gltf+json``)."""
    result = {}
    for line in value.strip().splitlines():
        key, _, item = line.strip().partition(" ")
        if not key or not item.strip():
            raise ValueError("expected lines of 'key value'")
        result[key] = item.strip()
    return result


def store(value: str, ini: _Ini) -> Store | None:
    """A session store: ``cookie`` (no store: signed cookies), ``memory``,
    ``sqlite:PATH`` (relative to the ini file) or a ``redis://`` URL."""
    spec = value.strip()
    if spec in ("", "cookie"):
        return None
    if spec == "memory":
        return MemoryStore()
    if spec.startswith("sqlite:"):
        return SQLiteStore(path(spec[len("sqlite:") :], ini))
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(spec)
    raise ValueError("expected cookie, memory, sqlite:PATH or a redis:// URL")


# -- what each factory accepts --------------------------------------------------------

_COMPRESSION: dict[str, Converter] = {
    "min_size": integer,
    "types": words,
    "event_stream": boolean,
}

#: Each factory: the middleware class and its options' converters. Keys that are not
#: constructor arguments (``secret_env``) are resolved by :func:`_rename`.
FACTORIES: dict[str, tuple[type[Middleware], dict[str, Converter]]] = {
    "gzip": (Gzip, {"level": integer, **_COMPRESSION}),
    "compress": (
        Compress,
        {"encodings": words, "level": optional(levels), **_COMPRESSION},
    ),
    "session": (
        Session,
        {
            "secret": text,
            "secret_env": environment,
            "fallback_secrets": words,
            "fallback_secrets_env": environment_list,
            "store": store,
            "cookie_name": text,
            "max_age": duration,
            "idle_timeout": optional(duration),
            "reissue_after": optional(duration),
            "secure": optional(boolean),
            "httponly": boolean,
            "samesite": optional(text),
            "path": text,
            "domain": optional(text),
        },
    ),
    "basic_auth": (
        BasicAuth,
        {
            "realm": text,
            "htpasswd": path,
            "check": dotted,
            "exempt": words,
            "cache_ttl": duration,
            "cache_size": integer,
            "max_failures": optional(integer),
            "failure_window": duration,
            "trusted_proxies": integer,
            "allow_plaintext": boolean,
        },
    ),
    "access_log": (
        AccessLog,
        {
            "logger": text,
            "format": text,
            "level": text,
            "trusted_proxies": integer,
            "request_id_header": text,
            "trust_request_id": boolean,
            "utc": boolean,
        },
    ),
    "static": (
        StaticFiles,
        {
            "directory": path,
            "prefix": text,
            "max_age": optional(duration),
            "immutable": optional(text),
            "index": optional(text),
            "precompressed": boolean,
            "dotfiles": text,
            "follow_symlinks": boolean,
            "autorefresh": boolean,
            "fallthrough": boolean,
            "content_types": pairs,
        },
    ),
    "errors": (
        ErrorCatcher,
        {
            "debug": boolean,
            "expected": dotted_list,
            "on_error": dotted_list,
            "render": dotted,
        },
    ),
}

# Options read under another name than the constructor's.
_RENAMED = {"secret_env": "secret", "fallback_secrets_env": "fallback_secrets"}


def locate(
    global_conf: Mapping[str, str], name: str, keys: set[str]
) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """The ini sections that may have configured factory *name* with *keys*, found
    by reading the ini file (PasteDeploy does not tell a factory its section): each
    with the keys of its own that ``[DEFAULT]`` hides, ``{key: (its value,
    DEFAULT's value)}``."""
    source = global_conf.get("__file__")
    if not source:
        return []
    # [DEFAULT] read as a section of its own, so each section's own keys show.
    parser = configparser.RawConfigParser(strict=False, default_section="\0")
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read(source, encoding="utf-8")
    except configparser.Error:
        return []
    defaults = dict(parser.items("DEFAULT")) if parser.has_section("DEFAULT") else {}
    found = []
    for section in parser.sections():
        use = parser.get(section, "use", fallback="").strip()
        if not (use.endswith(f"#{name}") or use.endswith(f":{name}")):
            continue
        own = {
            key: value
            for key, value in parser.items(section)
            if key != "use" and not key.startswith(("set ", "get "))
        }
        if set(own) - set(defaults) == keys:
            hidden = {k: (v, defaults[k]) for k, v in own.items() if k in defaults}
            found.append((section, hidden))
    return found


def build(
    name: str, global_conf: Mapping[str, str], local_conf: Mapping[str, str]
) -> Middleware:
    """The middleware *name* configured from ini strings (what each factory does).

    :raises ValueError: an unknown key, a value that does not convert, or one the
        middleware refuses, naming the section, the key and the value.
    """
    cls: Any = FACTORIES[name][0]
    converters = FACTORIES[name][1]
    ini = _Ini(global_conf)
    candidates = locate(global_conf, name, set(local_conf))
    section = candidates[0][0] if len(candidates) == 1 else f"filter using {name}"
    for where, hidden in candidates:
        for key, (value, default) in hidden.items():
            if key in converters:
                raise ValueError(
                    f"[{where}] {key} = {value!r} is hidden by [DEFAULT] {key} = "
                    f"{default!r}: PasteDeploy drops a section's key that [DEFAULT] "
                    "also has. Remove or rename the [DEFAULT] key"
                )
    options: dict[str, Any] = {}
    for key, value in local_conf.items():
        convert = converters.get(key)
        if convert is None:
            raise ValueError(
                f"[{section}] unknown option {key} = {value!r}; "
                f"{name} takes: {', '.join(sorted(converters))}"
            )
        try:
            converted = convert(value, ini)
        except ValueError as exc:
            raise ValueError(f"[{section}] {key} = {value!r}: {exc}") from None
        target = _RENAMED.get(key, key)
        if target in options:
            raise ValueError(
                f"[{section}] {key} = {value!r}: {target} is given twice; "
                f"use {target} or {target}_env, not both"
            )
        options[target] = converted
    try:
        middleware: Middleware = cls(**options)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"[{section}] {exc}") from None
    return middleware


def _factory(name: str) -> Callable[..., Middleware]:
    def factory(global_conf: Mapping[str, str], **local_conf: str) -> Middleware:
        return build(name, global_conf, local_conf)

    factory.__name__ = factory.__qualname__ = name
    cls = FACTORIES[name][0]
    factory.__doc__ = (
        f"PasteDeploy filter factory for :class:`{cls.__module__}.{cls.__name__}`: "
        f"options {', '.join(sorted(FACTORIES[name][1]))}."
    )
    return factory


gzip = _factory("gzip")
compress = _factory("compress")
session = _factory("session")
basic_auth = _factory("basic_auth")
access_log = _factory("access_log")
static = _factory("static")
errors = _factory("errors")
