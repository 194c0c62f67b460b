"""The :class:`ProxyHeaders` middleware: the request as the client made it, from
what the proxies in front of the app wrote."""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Iterable
from typing import Any, ClassVar

from ..options import Count, Flag, Names, Option
from ..proxy import Layer, Middleware
from ..wsgi import StartResponse, WSGIApplication, WSGIEnvironment
from . import values

__all__ = ["ORIGINAL_KEY", "ProxyHeaders"]

log = logging.getLogger("middleware.proxy_headers")

#: Where the values the server had are kept, as a dict, before any change.
ORIGINAL_KEY = "middleware.proxy.original"
#: The headers the ``read`` option may name.
READABLE = ("for", "proto", "host", "port", "prefix")
#: The environ keys this layer may change (and keeps under :data:`ORIGINAL_KEY`).
KEYS = (
    "REMOTE_ADDR",
    "wsgi.url_scheme",
    "HTTP_HOST",
    "SERVER_NAME",
    "SERVER_PORT",
    "SCRIPT_NAME",
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return False
    return True


class ProxyHeaders(Middleware):
    """Set ``REMOTE_ADDR``, ``wsgi.url_scheme``, ``HTTP_HOST`` (and
    ``SERVER_NAME``), ``SERVER_PORT`` and ``SCRIPT_NAME`` from the headers the
    proxies in front of the app write, so that every layer and the app see the
    client's request. Put it outermost: the first in ``compose()``.

    :param hops: how many proxies in front of the app append to the forwarding
        headers (nginx, then a load balancer: 2). Of each header the *hops*-th
        entry from the right is taken, the one the outermost of them wrote, and
        only when there are that many: what the client wrote itself, further
        left, is never taken.
    :param trusted_from: addresses or networks (``["10.0.0.0/8", "::1"]``); when
        given, the headers are read only on requests whose ``REMOTE_ADDR`` is in
        one of them (gunicorn's ``forwarded_allow_ips``). Otherwise every request
        is taken to come through the proxies: the app must not be reachable
        around them.
    :param read: which of the headers to take: ``"for"`` (the address),
        ``"proto"``, ``"host"``, ``"port"``, ``"prefix"``. By default the first
        two, as Werkzeug's ProxyFix: a proxy passes on the headers it does not
        set itself, so a header is only safe to take when every proxy in front
        sets or appends it (nginx: ``proxy_set_header X-Forwarded-Host $host``
        before adding ``"host"``).
    :param forwarded: read RFC 7239 ``Forwarded`` (``for=``, ``proto=``,
        ``host=``, as *read* allows) instead of the ``X-Forwarded-*`` headers.

    ``X-Forwarded-For`` (an IP address; a port is dropped), ``X-Forwarded-Proto``
    (``http`` or ``https``), ``X-Forwarded-Host`` (a host and an optional port),
    ``X-Forwarded-Port`` and ``X-Forwarded-Prefix`` (a path, put before
    ``SCRIPT_NAME``) are each taken by the same rule, and each only when valid:
    a missing, short, malformed or oversized header changes nothing (a debug line
    in the ``middleware.proxy_headers`` log), never a 4xx or a 500. What the server
    had is kept in ``environ["middleware.proxy.original"]``.
    """

    #: The declarations each option is checked (and read from ini files) by.
    options: ClassVar[dict[str, Option[Any]]] = {
        "hops": Count(minimum=1),
        "trusted_from": Names(
            _network, expects="a list of IP addresses or networks", none=True
        ),
        "read": Names(
            lambda name: name in READABLE,
            expects="a list of 'for', 'proto', 'host', 'port', 'prefix'",
        ),
        "forwarded": Flag(),
    }

    def __init__(
        self,
        hops: int = 1,
        *,
        trusted_from: Iterable[str] | None = None,
        read: Iterable[str] = ("for", "proto"),
        forwarded: bool = False,
    ) -> None:
        options = self.options
        self.hops: int = options["hops"].check("hops", hops)
        self.trusted_from: tuple[str, ...] | None = options["trusted_from"].check(
            "trusted_from", trusted_from
        )
        self.read: tuple[str, ...] = options["read"].check("read", read)
        self.forwarded: bool = options["forwarded"].check("forwarded", forwarded)
        reading = set(self.read)
        self._for, self._proto = "for" in reading, "proto" in reading
        self._host, self._port = "host" in reading, "port" in reading
        self._prefix = "prefix" in reading
        networks = tuple(
            ipaddress.ip_network(network.strip(), strict=False)
            for network in self.trusted_from or ()
        )
        self._networks: tuple[Network, ...] = networks
        # One look per server address, kept for the next request from it; bounded
        # (1,024 short strings), since clients reaching the server directly each
        # bring one.
        self._trusted = functools.lru_cache(maxsize=1024)(self._trusts)

    def __call__(self, app: WSGIApplication) -> WSGIApplication:
        if not callable(app):
            raise TypeError(
                f"{type(self).__name__} wraps a WSGI application (a callable), "
                f"got {app!r}"
            )
        return _ProxyHeadersLayer(app, self)

    def _trusts(self, remote: str) -> bool:
        try:
            client = ipaddress.ip_address(remote)
        except ValueError:  # a unix socket's "" or a server's oddity
            return False
        if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped:
            client = client.ipv4_mapped  # a dual-stack server's ::ffff:10.0.0.1
        return any(client in network for network in self._networks)

    def apply(self, environ: WSGIEnvironment) -> None:
        """Change *environ* by what the proxies wrote (see the class)."""
        get = environ.get
        if ORIGINAL_KEY in environ:  # applied twice: the first kept the server's
            return
        environ[ORIGINAL_KEY] = {  # spelled out: a third of the cost of a loop
            "REMOTE_ADDR": get("REMOTE_ADDR"),
            "wsgi.url_scheme": get("wsgi.url_scheme"),
            "HTTP_HOST": get("HTTP_HOST"),
            "SERVER_NAME": get("SERVER_NAME"),
            "SERVER_PORT": get("SERVER_PORT"),
            "SCRIPT_NAME": get("SCRIPT_NAME"),
        }
        if self._networks:
            remote = get("REMOTE_ADDR") or ""
            # Only what can be an address is remembered (at most 45 characters):
            # the cache is bounded in bytes as in entries, whatever a server sets.
            trusted = self._trusted if len(remote) <= 45 else self._trusts
            if not trusted(remote):
                return
        if self.forwarded:
            self._apply_forwarded(environ)
            return
        hops = self.hops
        forwarded_for = get("HTTP_X_FORWARDED_FOR") if self._for else None
        if forwarded_for is not None:
            text = values.entry(forwarded_for, hops)
            found = None if text is None else values.address(text)
            if found is None:
                _ignored("X-Forwarded-For", forwarded_for)
            else:
                environ["REMOTE_ADDR"] = found
        proto = get("HTTP_X_FORWARDED_PROTO") if self._proto else None
        if proto is not None:
            self._take_scheme(environ, values.entry(proto, hops), proto)
        forwarded_host = get("HTTP_X_FORWARDED_HOST") if self._host else None
        if forwarded_host is not None:
            self._take_host(environ, values.entry(forwarded_host, hops), forwarded_host)
        forwarded_port = get("HTTP_X_FORWARDED_PORT") if self._port else None
        if forwarded_port is not None:
            self._take_port(environ, values.entry(forwarded_port, hops))
        forwarded_prefix = get("HTTP_X_FORWARDED_PREFIX") if self._prefix else None
        if forwarded_prefix is not None:
            self._take_prefix(environ, values.entry(forwarded_prefix, hops))

    def _apply_forwarded(self, environ: WSGIEnvironment) -> None:
        header = environ.get("HTTP_FORWARDED")
        if header is None:
            return
        elements = values.forwarded_elements(header, self.hops)
        if elements is None:
            _ignored("Forwarded", header, "malformed, oversized or short")
            return
        element = elements[-self.hops]
        if "for" in element and self._for:
            found = values.node(element["for"])
            if found is None:
                _ignored("Forwarded", header, "for= names no IP address")
            else:
                environ["REMOTE_ADDR"] = found
        if "proto" in element and self._proto:
            self._take_scheme(environ, element["proto"], header)
        if "host" in element and self._host:
            self._take_host(environ, element["host"], header)

    def _take_scheme(
        self, environ: WSGIEnvironment, text: str | None, header: str
    ) -> None:
        found = None if text is None else values.scheme(text)
        if found is None:
            _ignored("the scheme of", header)
            return
        environ["wsgi.url_scheme"] = found

    def _take_host(
        self, environ: WSGIEnvironment, text: str | None, header: str
    ) -> None:
        found = None if text is None else values.host(text)
        if found is None:
            _ignored("the host of", header)
            return
        name, number = found
        environ["HTTP_HOST"] = name if number is None else f"{name}:{number}"
        environ["SERVER_NAME"] = name
        scheme = environ.get("wsgi.url_scheme", "http")
        environ["SERVER_PORT"] = number or _DEFAULT_PORTS.get(scheme, "80")

    def _take_port(self, environ: WSGIEnvironment, text: str | None) -> None:
        found = None if text is None else values.port(text)
        if found is None:
            _ignored("X-Forwarded-Port", text)
            return
        current = values.host(environ.get("HTTP_HOST") or "")
        name_only = current[0] if current else environ.get("SERVER_NAME", "")
        if not name_only:  # no name to put the port on
            _ignored("X-Forwarded-Port", text, "there is no host to give it to")
            return
        environ["SERVER_PORT"] = found
        if found == _DEFAULT_PORTS.get(environ.get("wsgi.url_scheme", "")):
            environ["HTTP_HOST"] = name_only
        else:
            environ["HTTP_HOST"] = f"{name_only}:{found}"

    def _take_prefix(self, environ: WSGIEnvironment, text: str | None) -> None:
        found = None if text is None else values.prefix(text)
        if found is None:
            _ignored("X-Forwarded-Prefix", text)
            return
        environ["SCRIPT_NAME"] = found + environ.get("SCRIPT_NAME", "")


def _ignored(
    name: str, value: str | None, why: str = "malformed, short or oversized"
) -> None:
    """A debug line for a header not taken (its first 200 characters)."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug("ignored %s %.200r: %s", name, value, why)


class _ProxyHeadersLayer(Layer):
    """The environ changed, then the app called with the server's own
    ``start_response``: no per-request object, no proxy of the response."""

    __slots__ = ("_apply",)

    def __init__(self, app: WSGIApplication, middleware: ProxyHeaders) -> None:
        super().__init__(app, middleware)
        self._apply = middleware.apply

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        self._apply(environ)
        return self.app(environ, start_response)
