"""The :class:`SecurityHeaders` middleware: the browser's security headers on
every response, HSTS on https only, and an optional redirect to https."""

from __future__ import annotations

import re
import secrets
import socket
from collections.abc import Iterable
from typing import Any, ClassVar
from urllib.parse import quote

from ..http import prefixes, under
from ..options import Choice, Flag, Names, Option, Seconds
from ..proxy import Middleware, Responder
from ..wsgi import Answer, Headers, status_page
from .policies import NONCE, ContentSecurityPolicy, PermissionsPolicy

__all__ = ["NONCE_KEY", "SecurityHeaders"]

#: Where ``csp_nonce=True`` puts this request's nonce, for templates.
NONCE_KEY = "middleware.csp_nonce"
REFERRER_POLICIES = (
    "no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
    "same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url",
)  # fmt: skip
ONE_YEAR = 31_536_000
_HOST = re.compile(
    r"(?P<name>[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?"
    r"|\[(?P<ipv6>[0-9A-Fa-f:.]+)\])(?::(?P<port>[0-9]{1,5}))?"
)
_BAD_HOST = status_page("400 Bad Request")
# What stays as it is in a redirect's path and query (RFC 3986 pchar and delimiters).
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?%"


def _host(text: str) -> str | None:
    """*text* as the host of a redirect (a port from 1 to 65535 kept, but 80), or
    None for one that is not a host."""
    match = _HOST.fullmatch(text)
    if match is None:
        return None
    ipv6, number = match["ipv6"], match["port"]
    if ipv6 is not None:
        try:
            socket.inet_pton(socket.AF_INET6, ipv6)
        except (OSError, ValueError):
            return None
    if number is None:
        return match["name"]
    if not 0 < int(number) <= 65535:
        return None
    return match["name"] if int(number) == 80 else f"{match['name']}:{int(number)}"


def _bytes(text: str) -> bytes:
    """A WSGI string's bytes (latin-1, PEP 3333), or UTF-8 for one a server or an
    app made from text."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def _prefix(value: object) -> bool:
    return isinstance(value, str) and value.startswith("/")


class _Headers(Responder["SecurityHeaders"]):
    """Sees each request (the redirect to https, the nonce), and adds to each
    response the headers the app did not set itself."""

    def on_request(self) -> Answer | None:
        middleware, environ = self.middleware, self.environ
        if middleware.csp_nonce:
            environ[NONCE_KEY] = secrets.token_urlsafe(16)
        if not middleware.https_redirect or environ.get("wsgi.url_scheme") == "https":
            return None
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if middleware.is_exempt(path):
            return None
        return middleware.redirect(environ, path)

    def on_start(self, status: str, headers: Headers) -> None:
        middleware = self.middleware
        present = {name.lower() for name, _ in headers}
        for name, value in middleware.fixed:
            if name.lower() not in present:
                headers.append((name, value))
        if (
            middleware.hsts is not None
            and "strict-transport-security" not in present
            and self.environ.get("wsgi.url_scheme") == "https"
        ):
            headers.append(("Strict-Transport-Security", middleware.hsts))
        policy = middleware.content_security_policy
        if policy is not None and "content-security-policy" not in present:
            if middleware.csp_nonce:
                nonce = self.environ.get(NONCE_KEY, "")
                policy = policy.replace(NONCE, f"'nonce-{nonce}'")
            headers.append(("Content-Security-Policy", policy))


class SecurityHeaders(Middleware):
    """The security headers a browser reads, on every response; a header the app
    set itself is left as the app set it.

    :param hsts_seconds: ``Strict-Transport-Security: max-age=N`` on responses to
        https requests (never on http, where a browser ignores it and an attacker
        could strip it anyway); 0, the default, sends none. Start small (300), then
        a year (31536000) once every subdomain serves https.
    :param hsts_include_subdomains: add ``includeSubDomains``.
    :param hsts_preload: add ``preload`` (needs both of the above, a year or more).
    :param https_redirect: answer http requests with a redirect to the same host,
        path and query on https: 301 for GET and HEAD, 308 for other methods (which
        keeps the method and body).
    :param redirect_exempt: path prefixes (whole segments) never redirected: a
        health check the load balancer makes over http.
    :param nosniff: ``X-Content-Type-Options: nosniff``.
    :param referrer_policy: ``Referrer-Policy``, or None.
    :param frame_options: ``X-Frame-Options``: ``"DENY"``, ``"SAMEORIGIN"`` or None.
    :param cross_origin_opener_policy: ``Cross-Origin-Opener-Policy``:
        ``"same-origin"``, ``"same-origin-allow-popups"``, ``"unsafe-none"`` or None.
    :param content_security_policy: ``Content-Security-Policy``: its value, or a
        dict of directive -> sources; None (the default) sends none, since only
        you know what your pages load.
    :param csp_nonce: a fresh nonce per request in
        ``environ["middleware.csp_nonce"]``, and ``{nonce}`` in the policy replaced
        by ``'nonce-<it>'``: ``script-src 'self' {nonce}``, and
        ``<script nonce="...">`` in templates.
    :param permissions_policy: ``Permissions-Policy``: its value, or a dict of
        feature -> allowed origins (``{"geolocation": []}``); None sends none.
    """

    responder = _Headers
    #: The declarations each option is checked (and read from ini files) by.
    options: ClassVar[dict[str, Option[Any]]] = {
        "hsts_seconds": Seconds(positive=False),
        "hsts_include_subdomains": Flag(),
        "hsts_preload": Flag(),
        "https_redirect": Flag(),
        "redirect_exempt": Names(_prefix, expects="a list of paths starting with '/'"),
        "nosniff": Flag(),
        "referrer_policy": Choice(*REFERRER_POLICIES, none=True),
        "frame_options": Choice("DENY", "SAMEORIGIN", none=True),
        "cross_origin_opener_policy": Choice(
            "same-origin", "same-origin-allow-popups", "unsafe-none", none=True
        ),
        "content_security_policy": ContentSecurityPolicy(none=True),
        "csp_nonce": Flag(),
        "permissions_policy": PermissionsPolicy(none=True),
    }

    def __init__(
        self,
        *,
        hsts_seconds: int = 0,
        hsts_include_subdomains: bool = False,
        hsts_preload: bool = False,
        https_redirect: bool = False,
        redirect_exempt: Iterable[str] = (),
        nosniff: bool = True,
        referrer_policy: str | None = "strict-origin-when-cross-origin",
        frame_options: str | None = "DENY",
        cross_origin_opener_policy: str | None = "same-origin",
        content_security_policy: str | dict[str, Any] | None = None,
        csp_nonce: bool = False,
        permissions_policy: str | dict[str, Any] | None = None,
    ) -> None:
        given = dict(locals())
        for name, option in self.options.items():
            setattr(self, name, option.check(name, given[name]))
        self.hsts_seconds: int
        self.hsts_include_subdomains: bool
        self.hsts_preload: bool
        self.https_redirect: bool
        self.redirect_exempt: tuple[str, ...]
        self.nosniff: bool
        self.referrer_policy: str | None
        self.frame_options: str | None
        self.cross_origin_opener_policy: str | None
        self.content_security_policy: str | None
        self.csp_nonce: bool
        self.permissions_policy: str | None
        if self.hsts_preload and not (
            self.hsts_include_subdomains and self.hsts_seconds >= ONE_YEAR
        ):
            raise ValueError(
                "hsts_preload: the preload list needs hsts_include_subdomains=True "
                f"and hsts_seconds of a year (31536000) or more, got "
                f"{self.hsts_include_subdomains} and {self.hsts_seconds}"
            )
        if not self.csp_nonce and NONCE in (self.content_security_policy or ""):
            raise ValueError(
                "content_security_policy: has {nonce} but csp_nonce is False "
                f"(the browser would get it literally), got "
                f"{self.content_security_policy!r}"
            )
        self.redirect_exempt = prefixes(self.redirect_exempt)
        if self.csp_nonce and NONCE not in (self.content_security_policy or ""):
            raise ValueError(
                "csp_nonce: the content_security_policy has no {nonce} to fill "
                f"(write it where the nonce goes: script-src 'self' {{nonce}}), got "
                f"{self.content_security_policy!r}"
            )
        self.hsts: str | None = None
        if self.hsts_seconds:
            self.hsts = (
                f"max-age={self.hsts_seconds}"
                + ("; includeSubDomains" if self.hsts_include_subdomains else "")
                + ("; preload" if self.hsts_preload else "")
            )
        fixed = [
            ("X-Content-Type-Options", "nosniff" if self.nosniff else None),
            ("Referrer-Policy", self.referrer_policy),
            ("X-Frame-Options", self.frame_options),
            ("Cross-Origin-Opener-Policy", self.cross_origin_opener_policy),
            ("Permissions-Policy", self.permissions_policy),
        ]
        #: The headers that do not depend on the request, built once.
        self.fixed: tuple[tuple[str, str], ...] = tuple(
            (name, value) for name, value in fixed if value is not None
        )

    def is_exempt(self, path: str) -> bool:
        """Whether *path* is under a ``redirect_exempt`` prefix (whole segments; a
        path with dot segments or an empty segment never is)."""
        return under(path, self.redirect_exempt)

    def redirect(self, environ: dict[str, Any], path: str) -> Answer:
        """The redirect of an http request to https: same host, path and query,
        with the headers of every response; a 400 for a ``Host`` that is not a
        host."""
        host = _host(environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""))
        if host is None:
            refused, plain, page = _BAD_HOST
            return refused, [*plain, *self.fixed], page
        if not path.startswith("/"):  # "GET @evil.example": never a new authority
            path = "/" + path
        target = "https://" + host + quote(_bytes(path), safe=_PATH_SAFE)
        query = environ.get("QUERY_STRING")
        if query:
            target += "?" + quote(_bytes(query), safe=_QUERY_SAFE)
        method = environ.get("REQUEST_METHOD", "GET")
        status = (
            "301 Moved Permanently"
            if method in ("GET", "HEAD")
            else ("308 Permanent Redirect")
        )
        body = f"Redirecting to {target}\n".encode()
        headers = [
            ("Location", target),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *self.fixed,
        ]
        return status, headers, [body]
