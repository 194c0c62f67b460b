"""PasteDeploy filter factories: every middleware usable from an ini pipeline.

.. code-block:: ini

   [pipeline:main]
   pipeline = access_log errors gzip static app

   [filter:gzip]
   use = egg:wsgi-middleware-toolkit#gzip
   level = 6

The factories are registered as ``paste.filter_factory`` entry points named
``gzip``, ``compress``, ``session``, ``basic_auth``, ``access_log``, ``static``,
``errors``, ``proxy_headers``, ``security_headers`` and ``rate_limit`` (``use =
egg:wsgi-middleware-toolkit#NAME``), and can be named directly (``use =
call:middleware.paste:NAME``).

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
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import options
from .access_log import AccessLog
from .auth import BasicAuth
from .compress import Compress, Gzip
from .errors import ErrorCatcher
from .options import Count, Option, PathOption
from .proxy import Middleware
from .proxy_headers import ProxyHeaders
from .rate_limit import RateLimit
from .security_headers import SecurityHeaders
from .session import MemoryStore, RedisStore, Session, SQLiteStore, Store
from .static import StaticFiles

__all__ = [
    "FACTORIES",
    "access_log",
    "basic_auth",
    "compress",
    "errors",
    "gzip",
    "local_app",
    "proxy_headers",
    "rate_limit",
    "security_headers",
    "session",
    "static",
]


class _Ini:
    """Where options come from: the ini file's directory, for relative paths."""

    def __init__(self, global_conf: Mapping[str, str]) -> None:
        self.here = Path(global_conf.get("here") or os.getcwd())


# -- converters: (the ini string, the context) -> the option's value -----------------

Converter = Callable[[str, _Ini], Any]


def declared(option: Option[Any]) -> Converter:
    """The converter of an option its middleware declares (:mod:`middleware.options`):
    the ini rule is the option's own, beside its Python rule."""

    def converter(value: str, ini: _Ini) -> Any:
        return option.parse(value, ini.here)

    return converter


def text(value: str, ini: _Ini) -> str:
    return value


def integer(value: str, ini: _Ini) -> int:
    converted: int = Count().convert(value, ini.here)
    return converted


def words(value: str, ini: _Ini) -> list[str]:
    return options.words(value)


def environment(value: str, ini: _Ini) -> str:
    """The value of the environment variable named *value*."""
    name = value.strip()
    secret = os.environ.get(name)
    if not secret:
        raise ValueError(
            f"the environment variable {name} is not set; set it to a long random "
            f'value, e.g. export {name}="$(python3 -c '
            "'import secrets; print(secrets.token_hex(32))')\""
        )
    return secret


def environment_list(value: str, ini: _Ini) -> list[str]:
    return [environment(name, ini) for name in words(value, ini)]


def levels(value: str, ini: _Ini) -> int | dict[str, int] | None:
    """Compress's level: one number, or ``br:5 gzip:6`` per coding."""
    if value.strip().lower() in ("", "none"):
        return None
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
        return SQLiteStore(PathOption().convert(spec[len("sqlite:") :], ini.here))
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(spec)
    raise ValueError("expected cookie, memory, sqlite:PATH or a redis:// URL")


def _optional_text(value: str, ini: _Ini) -> str | None:
    return None if value.strip().lower() in ("", "none") else value


# -- what each factory accepts --------------------------------------------------------


def _options(cls: type[Middleware], **others: Converter) -> dict[str, Converter]:
    """A middleware's declared options as converters, and *others* (the options it
    checks by rules of its own, and the ini-only ones such as ``secret_env``)."""
    declarations: dict[str, Option[Any]] = getattr(cls, "options", {})
    converters = {name: declared(option) for name, option in declarations.items()}
    converters.update(others)
    return converters


#: Each factory: the middleware class and its options' converters. Keys that are not
#: constructor arguments (``secret_env``) are resolved by :func:`_rename`.
FACTORIES: dict[str, tuple[type[Middleware], dict[str, Converter]]] = {
    "gzip": (Gzip, _options(Gzip, level=integer)),
    "compress": (Compress, _options(Compress, encodings=words, level=levels)),
    "session": (
        Session,
        _options(
            Session,
            secret=text,
            secret_env=environment,
            fallback_secrets=words,
            fallback_secrets_env=environment_list,
            store=store,
            path=text,
            domain=_optional_text,
        ),
    ),
    "basic_auth": (BasicAuth, _options(BasicAuth)),
    "access_log": (AccessLog, _options(AccessLog)),
    "static": (
        StaticFiles,
        _options(
            StaticFiles,
            directory=declared(PathOption()),
            prefix=text,
            immutable=_optional_text,
            index=_optional_text,
            content_types=pairs,
        ),
    ),
    "errors": (ErrorCatcher, _options(ErrorCatcher)),
    "proxy_headers": (ProxyHeaders, _options(ProxyHeaders)),
    "security_headers": (SecurityHeaders, _options(SecurityHeaders)),
    "rate_limit": (RateLimit, _options(RateLimit)),
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
proxy_headers = _factory("proxy_headers")
security_headers = _factory("security_headers")
rate_limit = _factory("rate_limit")


def local_app(
    global_conf: Mapping[str, str], factory: str, **local_conf: str
) -> Callable[..., Any]:
    """PasteDeploy app factory for an app in a module next to the ini file::

        [app:main]
        use = call:middleware.paste:local_app
        factory = site_app:make_app
        title = My site

    The ini file's directory is put on ``sys.path`` before *factory*
    (``module:callable``, an app factory) is imported and called with the other
    keys, so the pipeline loads whichever directory the server starts in:
    ``gunicorn --paste examples/site.ini`` from the repository as
    ``python -m middleware serve`` from anywhere. ``use = call:site_app:make_app``
    finds the module only when that directory is already on the path."""
    import sys

    from .options import import_dotted

    here = global_conf.get("here")
    if here and here not in sys.path:
        sys.path.insert(0, here)
    try:
        make = import_dotted(factory)
    except ValueError as exc:
        raise ValueError(f"[app] factory = {factory!r}: {exc}") from None
    app: Callable[..., Any] = make(global_conf, **local_conf)
    return app
