"""ProxyHeaders (issue 19): the request as the client made it, from what the
proxies in front of the app wrote, and never from what the client wrote itself.

A hostile table: every row is a request whose headers a client or a proxy chain
could send; each says what the environ must be after, and nothing else changes.
A real nginx in front of waitress and gunicorn is in tests/test_nginx.py.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from middleware import ProxyHeaders
from middleware import testing as conformance
from middleware.proxy_headers import ORIGINAL_KEY
from middleware.proxy_headers.middleware import READABLE
from middleware.testing import make_environ, run
from middleware.wsgi import StartResponse, WSGIEnvironment

# What the server saw: a proxy on 10.0.0.1 connected to the app's port 8000.
SERVER = {
    "REMOTE_ADDR": "10.0.0.1",
    "wsgi.url_scheme": "http",
    "HTTP_HOST": "backend:8000",
    "SERVER_NAME": "backend",
    "SERVER_PORT": "8000",
    "SCRIPT_NAME": "",
}
KEYS = tuple(SERVER)
LONG = "1.2.3.4, " * 600  # 5,400 characters

# (name, hops, request headers (environ keys), what changes)
TABLE: list[tuple[str, int, dict[str, str], dict[str, str]]] = [
    ("no headers", 1, {}, {}),
    ("one proxy, one entry", 1, {"HTTP_X_FORWARDED_FOR": "203.0.113.7"},
     {"REMOTE_ADDR": "203.0.113.7"}),
    ("a spoofed left-most entry is never taken", 1,
     {"HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7"}, {"REMOTE_ADDR": "203.0.113.7"}),
    ("two proxies: the second from the right", 2,
     {"HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7, 10.0.0.2"},
     {"REMOTE_ADDR": "203.0.113.7"}),
    ("fewer entries than hops changes nothing", 2,
     {"HTTP_X_FORWARDED_FOR": "203.0.113.7"}, {}),
    ("spaces and tabs around entries", 1,
     {"HTTP_X_FORWARDED_FOR": "6.6.6.6 ,\t 203.0.113.7 \t"},
     {"REMOTE_ADDR": "203.0.113.7"}),
    ("an empty right-most entry", 1, {"HTTP_X_FORWARDED_FOR": "203.0.113.7, "}, {}),
    ("an empty header", 1, {"HTTP_X_FORWARDED_FOR": ""}, {}),
    ("only commas", 1, {"HTTP_X_FORWARDED_FOR": ",,,"}, {}),
    ("an IPv4 address with a port", 1, {"HTTP_X_FORWARDED_FOR": "203.0.113.7:5123"},
     {"REMOTE_ADDR": "203.0.113.7"}),
    ("a bare IPv6 address", 1, {"HTTP_X_FORWARDED_FOR": "2001:DB8::7"},
     {"REMOTE_ADDR": "2001:db8::7"}),
    ("a bracketed IPv6 address", 1, {"HTTP_X_FORWARDED_FOR": "[2001:db8::7]"},
     {"REMOTE_ADDR": "2001:db8::7"}),
    ("a bracketed IPv6 address with a port", 1,
     {"HTTP_X_FORWARDED_FOR": "[2001:db8::7]:443"}, {"REMOTE_ADDR": "2001:db8::7"}),
    ("an IPv6 address with a broken bracket", 1,
     {"HTTP_X_FORWARDED_FOR": "[2001:db8::7"}, {}),
    ("an IPv4 address out of range", 1, {"HTTP_X_FORWARDED_FOR": "300.1.2.3"}, {}),
    ("an IPv4 address with a leading zero (octal to some)", 1,
     {"HTTP_X_FORWARDED_FOR": "010.1.2.3"}, {}),
    ("a NUL in the address", 1, {"HTTP_X_FORWARDED_FOR": "1.2.3.4\x00"}, {}),
    ("unknown", 1, {"HTTP_X_FORWARDED_FOR": "unknown"}, {}),
    ("a host name is no address", 1, {"HTTP_X_FORWARDED_FOR": "evil.example"}, {}),
    ("an obfuscated identifier", 1, {"HTTP_X_FORWARDED_FOR": "_hidden"}, {}),
    ("a script in the header", 1,
     {"HTTP_X_FORWARDED_FOR": "<script>alert(1)</script>"}, {}),
    ("CR LF in the header", 1, {"HTTP_X_FORWARDED_FOR": "1.2.3.4\r\nX-Evil: 1"}, {}),
    ("a huge header is not read", 1,
     {"HTTP_X_FORWARDED_FOR": LONG + "203.0.113.7"}, {}),
    ("several header instances, joined by the server", 1,
     {"HTTP_X_FORWARDED_FOR": "6.6.6.6,203.0.113.7"}, {"REMOTE_ADDR": "203.0.113.7"}),
    ("https from the proxy", 1, {"HTTP_X_FORWARDED_PROTO": "https"},
     {"wsgi.url_scheme": "https"}),
    ("HTTPS in capitals", 1, {"HTTP_X_FORWARDED_PROTO": "HTTPS"},
     {"wsgi.url_scheme": "https"}),
    ("a spoofed scheme on the left", 1, {"HTTP_X_FORWARDED_PROTO": "https, http"}, {}),
    ("a bad scheme", 1, {"HTTP_X_FORWARDED_PROTO": "javascript"}, {}),
    ("ftp is not a scheme a WSGI app serves", 1, {"HTTP_X_FORWARDED_PROTO": "ftp"}, {}),
    ("a host", 1, {"HTTP_X_FORWARDED_HOST": "Shop.Example"},
     {"HTTP_HOST": "shop.example", "SERVER_NAME": "shop.example", "SERVER_PORT": "80"}),
    ("a host with a port", 1, {"HTTP_X_FORWARDED_HOST": "shop.example:8443"},
     {"HTTP_HOST": "shop.example:8443", "SERVER_NAME": "shop.example",
      "SERVER_PORT": "8443"}),
    ("an https host without a port", 1,
     {"HTTP_X_FORWARDED_HOST": "shop.example", "HTTP_X_FORWARDED_PROTO": "https"},
     {"HTTP_HOST": "shop.example", "SERVER_NAME": "shop.example",
      "SERVER_PORT": "443", "wsgi.url_scheme": "https"}),
    ("an IPv6 host", 1, {"HTTP_X_FORWARDED_HOST": "[2001:db8::1]:8080"},
     {"HTTP_HOST": "[2001:db8::1]:8080", "SERVER_NAME": "[2001:db8::1]",
      "SERVER_PORT": "8080"}),
    ("a host with a path", 1, {"HTTP_X_FORWARDED_HOST": "evil.example/x"}, {}),
    ("a host with a space", 1, {"HTTP_X_FORWARDED_HOST": "evil example"}, {}),
    ("a host with a user", 1, {"HTTP_X_FORWARDED_HOST": "me@evil.example"}, {}),
    ("a host with port 0", 1, {"HTTP_X_FORWARDED_HOST": "shop.example:0"}, {}),
    ("a host with port 70000", 1, {"HTTP_X_FORWARDED_HOST": "shop.example:70000"}, {}),
    ("a port", 1, {"HTTP_X_FORWARDED_PORT": "8443"},
     {"SERVER_PORT": "8443", "HTTP_HOST": "backend:8443"}),
    ("the default https port leaves the host bare", 1,
     {"HTTP_X_FORWARDED_PORT": "443", "HTTP_X_FORWARDED_PROTO": "https"},
     {"SERVER_PORT": "443", "HTTP_HOST": "backend", "wsgi.url_scheme": "https"}),
    ("a port with a sign", 1, {"HTTP_X_FORWARDED_PORT": "+80"}, {}),
    ("a host's port with leading zeros, normalised", 1,
     {"HTTP_X_FORWARDED_HOST": "shop.example:080"},
     {"HTTP_HOST": "shop.example:80", "SERVER_NAME": "shop.example",
      "SERVER_PORT": "80"}),
    ("an IPv4-mapped IPv6 address is the IPv4 one", 1,
     {"HTTP_X_FORWARDED_FOR": "::ffff:203.0.113.7"}, {"REMOTE_ADDR": "203.0.113.7"}),
    ("a port of other digits", 1, {"HTTP_X_FORWARDED_PORT": "٨٠"}, {}),
    ("a prefix", 1, {"HTTP_X_FORWARDED_PREFIX": "/shop/"}, {"SCRIPT_NAME": "/shop"}),
    ("a percent-encoded prefix", 1, {"HTTP_X_FORWARDED_PREFIX": "/caf%C3%A9"},
     {"SCRIPT_NAME": "/caf\u00c3\u00a9"}),  # UTF-8 bytes as latin-1, as WSGI has them
    ("a prefix without a slash", 1, {"HTTP_X_FORWARDED_PREFIX": "shop"}, {}),
    ("a prefix climbing out", 1, {"HTTP_X_FORWARDED_PREFIX": "/shop/../admin"}, {}),
    ("a prefix with a query", 1, {"HTTP_X_FORWARDED_PREFIX": "/shop?x=1"}, {}),
    ("a prefix with an encoded NUL", 1, {"HTTP_X_FORWARDED_PREFIX": "/a%00b"}, {}),
    ("a prefix that reads as a host", 1, {"HTTP_X_FORWARDED_PREFIX": "//evil.example"},
     {}),
    ("an encoded empty segment", 1, {"HTTP_X_FORWARDED_PREFIX": "/%2F%2Fevil"}, {}),
    ("an encoded ? or #", 1, {"HTTP_X_FORWARDED_PREFIX": "/a%3Fb%23c"}, {}),
    ("an encoded backslash", 1, {"HTTP_X_FORWARDED_PREFIX": "/%5c.."}, {}),
    ("a full URL as prefix", 1, {"HTTP_X_FORWARDED_PREFIX": "https://evil.example/"},
     {}),
    ("each header by its own entries", 2,
     {"HTTP_X_FORWARDED_FOR": "203.0.113.7, 10.0.0.2",
      "HTTP_X_FORWARDED_PROTO": "https"},  # one entry: short for hops=2
     {"REMOTE_ADDR": "203.0.113.7"}),
]  # fmt: skip

# RFC 7239 Forwarded, with forwarded=True.
FORWARDED: list[tuple[str, int, str, dict[str, str]]] = [
    ("for, proto and host", 1, "for=203.0.113.7;proto=https;host=shop.example",
     {"REMOTE_ADDR": "203.0.113.7", "wsgi.url_scheme": "https",
      "HTTP_HOST": "shop.example", "SERVER_NAME": "shop.example",
      "SERVER_PORT": "443"}),
    ("the right-most element", 1, "for=6.6.6.6, for=203.0.113.7",
     {"REMOTE_ADDR": "203.0.113.7"}),
    ("two hops", 2, "for=6.6.6.6, for=203.0.113.7, for=10.0.0.2",
     {"REMOTE_ADDR": "203.0.113.7"}),
    ("fewer elements than hops", 2, "for=203.0.113.7", {}),
    ("parameter names in any case", 1, "For=203.0.113.7;PROTO=https",
     {"REMOTE_ADDR": "203.0.113.7", "wsgi.url_scheme": "https"}),
    ("quoted IPv6 with a port", 1, 'for="[2001:db8:cafe::17]:4711"',
     {"REMOTE_ADDR": "2001:db8:cafe::17"}),
    ("quoted IPv4 with a port", 1, 'for="203.0.113.7:4711"',
     {"REMOTE_ADDR": "203.0.113.7"}),
    ("an obfuscated port", 1, 'for="203.0.113.7:_port9"',
     {"REMOTE_ADDR": "203.0.113.7"}),
    ("unknown", 1, "for=unknown", {}),
    ("an obfuscated identifier", 1, "for=_hidden", {}),
    ("a bare IPv6 address is not RFC 7239", 1, 'for="2001:db8::17"', {}),
    ("a comma inside quotes", 1, 'for="6.6.6.6, for=1.1.1.1";proto=https',
     {"wsgi.url_scheme": "https"}),
    ("an unterminated quote", 1, 'for="203.0.113.7', {}),
    ("a pair without =", 1, "for=203.0.113.7;secure", {}),
    ("a parameter twice in one element", 1, "for=6.6.6.6;for=203.0.113.7", {}),
    ("a malformed client part on the left is skipped", 1,
     'junk"=, for=203.0.113.7', {"REMOTE_ADDR": "203.0.113.7"}),
    ("a client's broken quote cannot blank the proxy's element", 1,
     'for="6.6.6.6, for=203.0.113.7', {"REMOTE_ADDR": "203.0.113.7"}),
    ("a malformed element the proxy wrote", 1, "for=6.6.6.6, for=203.0.113.7;x",
     {}),
    ("a bad proto", 1, "for=203.0.113.7;proto=gopher", {"REMOTE_ADDR": "203.0.113.7"}),
    ("a host with a path", 1, 'host="evil.example/x"', {}),
    ("escaped characters in quotes", 1, 'for="203.0.113.7";host="shop\\.example"',
     {"REMOTE_ADDR": "203.0.113.7", "HTTP_HOST": "shop.example",
      "SERVER_NAME": "shop.example", "SERVER_PORT": "80"}),
    ("empty pairs are allowed", 1, "for=203.0.113.7;;proto=https",
     {"REMOTE_ADDR": "203.0.113.7", "wsgi.url_scheme": "https"}),
    ("a huge header", 1, "for=1.2.3.4, " * 400 + "for=203.0.113.7", {}),
]  # fmt: skip


def seen_by_the_app(
    layer: ProxyHeaders, headers: dict[str, str], remote: str | None = None
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    environ = make_environ()
    environ.update(SERVER)
    if remote is not None:
        environ["REMOTE_ADDR"] = remote
    environ.update(headers)
    served = run(layer(app), environ)
    assert served.status == "200 OK" and served.error is None, served
    return seen


@pytest.mark.parametrize(
    ("hops", "headers", "changes"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_x_forwarded_headers(
    hops: int, headers: dict[str, str], changes: dict[str, str]
) -> None:
    seen = seen_by_the_app(ProxyHeaders(hops, read=READABLE), headers)
    assert {key: seen.get(key) for key in KEYS} == {**SERVER, **changes}
    assert seen[ORIGINAL_KEY] == SERVER


def test_by_default_only_the_address_and_the_scheme_are_read() -> None:
    """Found by review: nginx passes on a header it does not set, so through the
    usual config a client's own X-Forwarded-Prefix (or -Host, -Port) arrived as
    the entry "the proxy wrote". Those three are read only when asked for."""
    headers = {
        "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7",
        "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_X_FORWARDED_HOST": "evil.example",
        "HTTP_X_FORWARDED_PORT": "8443",
        "HTTP_X_FORWARDED_PREFIX": "/evil",
    }
    seen = seen_by_the_app(ProxyHeaders(), headers)
    assert {key: seen.get(key) for key in KEYS} == {
        **SERVER,
        "REMOTE_ADDR": "203.0.113.7",
        "wsgi.url_scheme": "https",
    }


def test_applied_twice_the_original_stays_the_servers() -> None:
    layer = ProxyHeaders()
    environ: dict[str, Any] = {**SERVER, "HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    layer.apply(environ)
    layer.apply(environ)
    assert environ[ORIGINAL_KEY] == SERVER


@pytest.mark.parametrize(
    ("hops", "header", "changes"),
    [row[1:] for row in FORWARDED],
    ids=[row[0] for row in FORWARDED],
)
def test_rfc_7239_forwarded(hops: int, header: str, changes: dict[str, str]) -> None:
    headers = {"HTTP_FORWARDED": header, "HTTP_X_FORWARDED_FOR": "6.6.6.6"}
    layer = ProxyHeaders(hops, forwarded=True, read=("for", "proto", "host"))
    seen = seen_by_the_app(layer, headers)
    assert {key: seen.get(key) for key in KEYS} == {**SERVER, **changes}


def test_x_forwarded_headers_are_ignored_with_forwarded_true() -> None:
    headers = {"HTTP_X_FORWARDED_FOR": "203.0.113.7", "HTTP_X_FORWARDED_PROTO": "https"}
    seen = seen_by_the_app(ProxyHeaders(forwarded=True), headers)
    assert {key: seen.get(key) for key in KEYS} == SERVER


def test_a_rejected_header_leaves_a_debug_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="middleware.proxy_headers"):
        seen_by_the_app(ProxyHeaders(), {"HTTP_X_FORWARDED_FOR": "unknown"})
    assert "ignored X-Forwarded-For 'unknown'" in caplog.text


# -- trusted_from ---------------------------------------------------------------------

# (name, trusted_from, REMOTE_ADDR, honoured)
TRUSTED = [
    ("inside a network", ["10.0.0.0/8"], "10.1.2.3", True),
    ("outside every network", ["10.0.0.0/8"], "192.0.2.1", False),
    ("an exact address", ["127.0.0.1"], "127.0.0.1", True),
    ("IPv6 loopback", ["::1"], "::1", True),
    ("IPv6 network", ["2001:db8::/32"], "2001:db8::5", True),
    ("IPv4 against an IPv6 network", ["2001:db8::/32"], "10.0.0.1", False),
    ("a unix socket's empty address", ["10.0.0.0/8"], "", False),
    ("a junk address", ["10.0.0.0/8"], "not-an-ip", False),
    ("several networks", ["10.0.0.0/8", "172.16.0.0/12"], "172.20.0.9", True),
    ("a dual-stack server's IPv4-mapped peer", ["10.0.0.0/8"], "::ffff:10.0.0.1", True),
]


@pytest.mark.parametrize(
    ("trusted", "remote", "honoured"),
    [row[1:] for row in TRUSTED],
    ids=[row[0] for row in TRUSTED],
)
def test_trusted_from(trusted: list[str], remote: str, honoured: bool) -> None:
    seen = seen_by_the_app(
        ProxyHeaders(trusted_from=trusted),
        {"HTTP_X_FORWARDED_FOR": "203.0.113.7", "HTTP_X_FORWARDED_PROTO": "https"},
        remote=remote,
    )
    assert (seen["REMOTE_ADDR"] == "203.0.113.7") is honoured
    assert (seen["wsgi.url_scheme"] == "https") is honoured
    assert seen[ORIGINAL_KEY]["REMOTE_ADDR"] == remote


def test_the_trust_cache_is_bounded() -> None:
    """5,000 clients reaching the server directly: the cache of looks at their
    addresses keeps at most 1,024 (short strings: about 200 bytes each)."""
    layer = ProxyHeaders(trusted_from=["10.0.0.0/8"])
    for n in range(5_000):
        layer.apply({"REMOTE_ADDR": f"192.0.{n // 256 % 256}.{n % 256}"})
    assert layer._trusted.cache_info().currsize == 1024


# (option, bad value, what the message names)
BAD_OPTIONS = [
    ("hops", 0, "hops: expected an int >= 1, got 0"),
    ("hops", True, "hops: expected an int >= 1, got True"),
    ("hops", "1", "hops: expected an int >= 1, got '1'"),
    ("trusted_from", "10.0.0.0/8", "trusted_from: expected a list of IP addresses"),
    ("trusted_from", ["10.0.0.0/33"], "trusted_from: expected a list of IP"),
    ("trusted_from", ["localhost"], "trusted_from: expected a list of IP"),
    ("forwarded", "yes", "forwarded: expected True or False, got 'yes'"),
    ("read", ["for", "cookie"], "read: expected a list of 'for', 'proto'"),
    ("read", "for", "read: expected a list of"),
]


@pytest.mark.parametrize(("option", "value", "message"), BAD_OPTIONS)
def test_bad_options_fail_at_construction_naming_them(
    option: str, value: Any, message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        if option == "hops":
            ProxyHeaders(value)
        else:
            ProxyHeaders(**{option: value})
    assert message in str(raised.value)


test_conformance = conformance.suite(
    conformance.Subject(
        "proxy-headers",
        ProxyHeaders(2, trusted_from=["0.0.0.0/0", "::/0"], read=READABLE),
        environ={"HTTP_X_FORWARDED_FOR": "203.0.113.7, 10.0.0.2"},
    )
)


def test_a_port_with_no_host_to_give_it_to_changes_nothing() -> None:
    """Found by review: with no HTTP_HOST nor SERVER_NAME, X-Forwarded-Port made
    the host ":8443"."""
    environ = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_PORT": "8443"}
    ProxyHeaders(read=READABLE).apply(environ)
    assert "HTTP_HOST" not in environ and "SERVER_PORT" not in environ


def test_an_environ_without_the_usual_keys_does_not_raise() -> None:
    environ = {
        "HTTP_X_FORWARDED_FOR": "203.0.113.7",
        "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_X_FORWARDED_HOST": "shop.example",
        "HTTP_X_FORWARDED_PREFIX": "/shop",
    }
    ProxyHeaders(read=READABLE).apply(environ)
    assert environ["REMOTE_ADDR"] == "203.0.113.7"
    assert environ["SCRIPT_NAME"] == "/shop" and environ["SERVER_PORT"] == "443"


def test_the_trust_cache_keeps_no_long_hostile_values() -> None:
    """Bounded in bytes too: 5,000 unique 10 KB REMOTE_ADDR values (no server
    sends those, but a layer in front might) are looked at, never remembered."""
    layer = ProxyHeaders(trusted_from=["10.0.0.0/8"])
    for n in range(5_000):
        environ = {
            "REMOTE_ADDR": f"{n:05d}" + "x" * 10_000,
            "HTTP_X_FORWARDED_FOR": "1.2.3.4",
        }
        layer.apply(environ)
        assert environ["REMOTE_ADDR"].startswith(f"{n:05d}")  # not trusted
    assert layer._trusted.cache_info().currsize == 0
