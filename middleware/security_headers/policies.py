"""The two structured headers SecurityHeaders writes, ``Content-Security-Policy``
and ``Permissions-Policy``: their options (a string, or a dict of directives),
checked at construction and rendered once."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..options import REFUSED, Option

__all__ = ["NONCE", "ContentSecurityPolicy", "PermissionsPolicy"]

#: What ``csp_nonce=True`` replaces, in the policy, by ``'nonce-<value>'``.
NONCE = "{nonce}"

_DIRECTIVE = re.compile(r"[a-z][a-z0-9-]*")
# A source or a whole policy: printable ASCII, no ";" or "," inside one source.
_SOURCE = re.compile(r"[!-+\--:<-~]+")
_POLICY = re.compile(r"[ -~]+")
_FEATURE = re.compile(r"[a-z][a-z0-9-]*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ORIGIN = re.compile(rf"https?://(?:\*\.)?{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?")


def _header_value(value: str) -> Any:
    """A policy given as its header value: printable ASCII, not empty."""
    text = value.strip()
    return text if text and _POLICY.fullmatch(text) else REFUSED


def _sources(value: Any) -> list[str] | None:
    """A directive's sources: a string (split on spaces) or a list of strings."""
    if isinstance(value, str):
        if not _POLICY.fullmatch(value):  # a control character, non-ASCII
            return None
        value = value.split()
    if not isinstance(value, list | tuple) or not all(
        isinstance(source, str) and _SOURCE.fullmatch(source) for source in value
    ):
        return None
    return list(value)


class ContentSecurityPolicy(Option[str]):
    """A policy as its header value (``"default-src 'self'; img-src *"``), or a
    dict of directive -> sources (``{"default-src": ["'self'"], "img-src": "*"}``,
    an empty list for a directive without sources such as
    ``upgrade-insecure-requests``); kept as the header value. In ini files the
    header value."""

    expects = (
        "a policy string, or a dict of directive names to lists of sources "
        "(printable ASCII, no ';' or ',' in a source)"
    )

    def accept(self, value: Any) -> Any:
        if isinstance(value, str):
            return _header_value(value)
        if not isinstance(value, dict) or not value:
            return REFUSED
        parts = []
        for directive, sources in value.items():
            found = _sources(sources)
            if not isinstance(directive, str) or not _DIRECTIVE.fullmatch(directive):
                return REFUSED
            if found is None:
                return REFUSED
            parts.append(" ".join([directive, *found]))
        return "; ".join(parts)

    def convert(self, text: str, here: Path) -> str:
        return text.strip()


class PermissionsPolicy(Option[str]):
    """A policy as its header value (``"geolocation=(), camera=(self)"``), or a
    dict of feature -> allowed origins (``{"geolocation": [], "camera":
    ["self", "https://meet.example"]}``: ``self``, ``*`` or ``https://`` origins);
    kept as the header value. In ini files the header value."""

    expects = (
        "a policy string, or a dict of feature names to lists of 'self', '*' or origins"
    )

    def accept(self, value: Any) -> Any:
        if isinstance(value, str):
            return _header_value(value)
        if not isinstance(value, dict) or not value:
            return REFUSED
        parts = []
        for feature, allowed in value.items():
            if not isinstance(feature, str) or not _FEATURE.fullmatch(feature):
                return REFUSED
            if isinstance(allowed, str):
                allowed = [allowed]
            if not isinstance(allowed, list | tuple):
                return REFUSED
            items = []
            for origin in allowed:
                if origin in ("self", "*"):
                    items.append(origin)
                elif isinstance(origin, str) and _ORIGIN.fullmatch(origin):
                    items.append(f'"{origin}"')
                else:
                    return REFUSED
            if "*" in items and len(items) > 1:  # * is the whole allowlist or none
                return REFUSED
            listed = "*" if items == ["*"] else f"({' '.join(items)})"
            parts.append(f"{feature}={listed}")
        return ", ".join(parts)

    def convert(self, text: str, here: Path) -> str:
        return text.strip()
