"""SecurityHeaders (issue 19): every option's header, the app's own headers left
alone, HSTS on https only, redirects to https (query strings, non-ASCII paths,
exempt paths, hostile hosts), a fresh nonce per request, and bad options refused
at construction naming them."""

from __future__ import annotations

from typing import Any

import pytest

from middleware import SecurityHeaders
from middleware import testing as conformance
from middleware.security_headers import NONCE_KEY
from middleware.testing import Served, make_environ, run
from middleware.wsgi import Headers, StartResponse, WSGIApplication, WSGIEnvironment

DEFAULTS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def page(headers: Headers | None = None) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html"), *(headers or [])])
        return [b"<p>hi</p>"]

    return app


def ask(
    layer: SecurityHeaders,
    app: WSGIApplication | None = None,
    scheme: str = "http",
    method: str = "GET",
    path: str = "/",
    **environ: str,
) -> Served:
    env = make_environ(method, path)
    env["wsgi.url_scheme"] = scheme
    env["HTTP_HOST"] = "shop.example"
    env.update(environ)
    served = run(layer(app or page()), env)
    assert served.error is None, served.error
    return served


def added(served: Served) -> dict[str, str]:
    return {name: value for name, value in served.headers if name != "Content-Type"}


def test_the_defaults() -> None:
    assert added(ask(SecurityHeaders())) == DEFAULTS
    assert added(ask(SecurityHeaders(), scheme="https")) == DEFAULTS  # hsts_seconds=0


# (name, options, scheme, the headers that differ from DEFAULTS; None: absent)
OPTIONS: list[tuple[str, dict[str, Any], str, dict[str, str | None]]] = [
    ("hsts on https", {"hsts_seconds": 300}, "https",
     {"Strict-Transport-Security": "max-age=300"}),
    ("never hsts on http", {"hsts_seconds": 300}, "http", {}),
    ("hsts with subdomains", {"hsts_seconds": 300, "hsts_include_subdomains": True},
     "https", {"Strict-Transport-Security": "max-age=300; includeSubDomains"}),
    ("hsts preload", {"hsts_seconds": 31536000, "hsts_include_subdomains": True,
                      "hsts_preload": True}, "https",
     {"Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload"}),
    ("hsts as a timedelta", {"hsts_seconds": __import__("datetime").timedelta(days=1)},
     "https", {"Strict-Transport-Security": "max-age=86400"}),
    ("nosniff off", {"nosniff": False}, "http", {"X-Content-Type-Options": None}),
    ("another referrer policy", {"referrer_policy": "no-referrer"}, "http",
     {"Referrer-Policy": "no-referrer"}),
    ("referrer policy in any case", {"referrer_policy": "Same-Origin"}, "http",
     {"Referrer-Policy": "same-origin"}),
    ("no referrer policy", {"referrer_policy": None}, "http",
     {"Referrer-Policy": None}),
    ("frames from the same origin", {"frame_options": "sameorigin"}, "http",
     {"X-Frame-Options": "SAMEORIGIN"}),
    ("no frame options", {"frame_options": None}, "http", {"X-Frame-Options": None}),
    ("COOP allowing popups", {"cross_origin_opener_policy": "same-origin-allow-popups"},
     "http", {"Cross-Origin-Opener-Policy": "same-origin-allow-popups"}),
    ("no COOP", {"cross_origin_opener_policy": None}, "http",
     {"Cross-Origin-Opener-Policy": None}),
    ("a CSP string", {"content_security_policy": "default-src 'self'"}, "http",
     {"Content-Security-Policy": "default-src 'self'"}),
    ("a CSP dict", {"content_security_policy": {
        "default-src": ["'self'"], "img-src": "'self' data:",
        "upgrade-insecure-requests": []}}, "http",
     {"Content-Security-Policy":
      "default-src 'self'; img-src 'self' data:; upgrade-insecure-requests"}),
    ("a permissions policy string", {"permissions_policy": "geolocation=()"}, "http",
     {"Permissions-Policy": "geolocation=()"}),
    ("a permissions policy dict", {"permissions_policy": {
        "geolocation": [], "camera": ["self", "https://meet.example"],
        "fullscreen": "*"}}, "http",
     {"Permissions-Policy":
      'geolocation=(), camera=(self "https://meet.example"), fullscreen=*'}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("options", "scheme", "changes"),
    [row[1:] for row in OPTIONS],
    ids=[row[0] for row in OPTIONS],
)
def test_each_option_sets_its_header(
    options: dict[str, Any], scheme: str, changes: dict[str, str | None]
) -> None:
    expected = {**DEFAULTS, **changes}
    expected = {name: value for name, value in expected.items() if value is not None}
    assert added(ask(SecurityHeaders(**options), scheme=scheme)) == expected


def test_a_header_the_app_set_is_left_as_it_set_it() -> None:
    own = [
        ("x-frame-options", "SAMEORIGIN"),  # any case
        ("Referrer-Policy", "no-referrer"),
        ("Strict-Transport-Security", "max-age=60"),
        ("Content-Security-Policy", "default-src *"),
        ("X-Content-Type-Options", "nosniff"),
        ("Cross-Origin-Opener-Policy", "unsafe-none"),
        ("Permissions-Policy", "camera=*"),
    ]
    layer = SecurityHeaders(
        hsts_seconds=300,
        content_security_policy="default-src 'self' {nonce}",
        csp_nonce=True,
        permissions_policy="camera=()",
    )
    served = ask(layer, page(own), scheme="https")
    assert served.headers == [("Content-Type", "text/html"), *own]


def test_the_nonce_is_fresh_per_request_and_in_the_header() -> None:
    nonces: list[str] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        nonces.append(environ[NONCE_KEY])
        start_response("200 OK", [("Content-Type", "text/html")])
        return [f'<script nonce="{environ[NONCE_KEY]}"></script>'.encode()]

    layer = SecurityHeaders(
        content_security_policy={
            "script-src": "'self' {nonce}",
            "style-src": "{nonce}",
        },
        csp_nonce=True,
    )
    policies = [ask(layer, app).header("Content-Security-Policy") for _ in range(50)]
    assert len(set(nonces)) == 50 and all(len(nonce) >= 22 for nonce in nonces)
    for nonce, policy in zip(nonces, policies, strict=True):
        assert policy == f"script-src 'self' 'nonce-{nonce}'; style-src 'nonce-{nonce}'"


# (name, method, path (as WSGI has it), query, Location or None when not redirected,
#  status)
REDIRECTS = [
    ("GET", "GET", "/cart", "", "https://shop.example/cart", "301"),
    ("HEAD", "HEAD", "/cart", "", "https://shop.example/cart", "301"),
    ("POST keeps its method", "POST", "/cart", "", "https://shop.example/cart", "308"),
    ("PUT", "PUT", "/cart/1", "", "https://shop.example/cart/1", "308"),
    ("DELETE", "DELETE", "/cart/1", "", "https://shop.example/cart/1", "308"),
    ("a query string", "GET", "/search", "q=caf%C3%A9&page=2",
     "https://shop.example/search?q=caf%C3%A9&page=2", "301"),
    ("a raw non-ASCII query", "GET", "/search", "q=caf\u00c3\u00a9",
     "https://shop.example/search?q=caf%C3%A9", "301"),
    ("a non-ASCII path", "GET", "/caf\u00c3\u00a9/men\u00c3\u00bc", "",
     "https://shop.example/caf%C3%A9/men%C3%BC", "301"),
    ("a space and a quote in the path", "GET", '/a b/"c"', "",
     "https://shop.example/a%20b/%22c%22", "301"),
    ("CR LF in the path cannot split the header", "GET", "/a\r\nSet-Cookie: x", "",
     "https://shop.example/a%0D%0ASet-Cookie:%20x", "301"),
    ("an exempt prefix", "GET", "/healthz", "", None, "200"),
    ("under an exempt prefix", "GET", "/healthz/db", "", None, "200"),
    ("a longer name is not under it", "GET", "/healthzX", "",
     "https://shop.example/healthzX", "301"),
    ("the root", "GET", "/", "", "https://shop.example/", "301"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "query", "location", "status"),
    [row[1:] for row in REDIRECTS],
    ids=[row[0] for row in REDIRECTS],
)
def test_https_redirects(
    method: str, path: str, query: str, location: str | None, status: str
) -> None:
    layer = SecurityHeaders(https_redirect=True, redirect_exempt=["/healthz"])
    served = ask(layer, method=method, path=path, QUERY_STRING=query)
    assert (served.status or "").startswith(status)
    assert served.header("Location") == location
    if method == "HEAD":
        assert served.body == b""
    if location is not None:  # the redirect has the security headers too
        assert served.header("X-Frame-Options") == "DENY"


def test_an_https_request_is_not_redirected() -> None:
    served = ask(SecurityHeaders(https_redirect=True), scheme="https")
    assert served.status == "200 OK"


def test_the_redirect_keeps_the_port_but_80() -> None:
    layer = SecurityHeaders(https_redirect=True)
    assert ask(layer, HTTP_HOST="shop.example:8080").header("Location") == (
        "https://shop.example:8080/"
    )
    assert ask(layer, HTTP_HOST="shop.example:80").header("Location") == (
        "https://shop.example/"
    )


@pytest.mark.parametrize(
    "host", ["evil.example/path", "evil example", "a@b", "x\r\nSet-Cookie: y", ""]
)
def test_a_hostile_host_is_a_400_not_a_redirect(host: str) -> None:
    served = ask(SecurityHeaders(https_redirect=True), HTTP_HOST=host, SERVER_NAME="")
    assert served.status == "400 Bad Request"
    assert served.header("Location") is None


# (option, bad value, what the message says)
BAD_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"hsts_seconds": -1}, "hsts_seconds: expected a number of seconds >= 0, got -1"),
    ({"hsts_seconds": "1y"}, "hsts_seconds: expected"),
    ({"hsts_preload": True, "hsts_seconds": 300}, "hsts_preload: the preload list"),
    ({"hsts_preload": True, "hsts_seconds": 31536000}, "hsts_include_subdomains=True"),
    ({"https_redirect": "yes"}, "https_redirect: expected True or False"),
    ({"redirect_exempt": "/healthz"}, "redirect_exempt: expected a list of paths"),
    ({"redirect_exempt": ["healthz"]}, "redirect_exempt: expected a list of paths"),
    ({"nosniff": 1}, "nosniff: expected True or False"),
    ({"referrer_policy": "always"}, "referrer_policy: expected 'no-referrer'"),
    ({"frame_options": "ALLOW-FROM x"}, "frame_options: expected 'DENY', 'SAMEORIGIN'"),
    ({"cross_origin_opener_policy": "open"}, "cross_origin_opener_policy: expected"),
    ({"content_security_policy": ""}, "content_security_policy: expected a policy"),
    ({"content_security_policy": "default-src 'self'\r\nX: y"},
     "content_security_policy: expected"),
    ({"content_security_policy": {"default-src": "'self'; script-src *"}},
     "content_security_policy: expected"),
    ({"content_security_policy": {"Default Src": "*"}}, "content_security_policy"),
    ({"content_security_policy": {}}, "content_security_policy: expected"),
    ({"csp_nonce": True}, "csp_nonce: the content_security_policy has no {nonce}"),
    ({"csp_nonce": True, "content_security_policy": "default-src 'self'"},
     "csp_nonce: the content_security_policy has no {nonce}"),
    ({"permissions_policy": {"camera": ["evil"]}}, "permissions_policy: expected"),
    ({"permissions_policy": {"camera": [1]}}, "permissions_policy: expected"),
    ({"permissions_policy": 5}, "permissions_policy: expected"),
]  # fmt: skip


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_bad_options_fail_at_construction_naming_them(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        SecurityHeaders(**options)
    assert message in str(raised.value)


def check_headers(style: conformance.Style, outcome: Served) -> None:
    if outcome.status is not None and outcome.status.startswith("200"):
        assert outcome.header("X-Content-Type-Options") == "nosniff"


test_conformance = conformance.suite(
    conformance.Subject(
        "security-headers",
        SecurityHeaders(
            hsts_seconds=300,
            content_security_policy="script-src {nonce}",
            csp_nonce=True,
        ),
        check=check_headers,
    ),
    conformance.Subject(
        "security-headers-redirecting-nothing",  # every request of the kit is http
        SecurityHeaders(https_redirect=True, redirect_exempt=["/"]),
    ),
)


# Found by review.
def test_a_path_without_its_slash_cannot_name_another_host() -> None:
    """``GET @evil.example`` gave PATH_INFO "@evil.example" and a Location of
    https://shop.example@evil.example: evil.example, with a user name."""
    layer = SecurityHeaders(https_redirect=True)
    for path in ("@evil.example", ":443@evil.example/"):
        environ = make_environ()
        environ.update(HTTP_HOST="shop.example", PATH_INFO=path)
        location = run(layer(page()), environ).header("Location") or ""
        assert location.startswith("https://shop.example/"), location


@pytest.mark.parametrize(
    ("host", "location"),
    [
        ("shop.example:080", "https://shop.example/"),
        ("shop.example:0443", "https://shop.example:443/"),
        ("[2001:db8::1]:8080", "https://[2001:db8::1]:8080/"),
        ("[:::::]", None),
        ("shop.example:99999", None),
        ("good.-evil-", None),
    ],
)
def test_redirect_hosts_are_checked_and_ports_normalised(
    host: str, location: str | None
) -> None:
    served = ask(SecurityHeaders(https_redirect=True), HTTP_HOST=host)
    assert served.header("Location") == location
    if location is None:
        assert served.status == "400 Bad Request"
        assert served.header("X-Frame-Options") == "DENY"  # the 400 has them too


def test_an_exempt_prefix_with_a_trailing_slash_and_dot_segments() -> None:
    layer = SecurityHeaders(https_redirect=True, redirect_exempt=["/api/"])
    assert ask(layer, path="/api").status == "200 OK"
    assert ask(layer, path="/api/x").status == "200 OK"
    assert ask(layer, path="/api/../admin").status == "301 Moved Permanently"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"content_security_policy": {"default-src": "'self'\r\nX-Evil: 1"}},
         "content_security_policy: expected"),
        ({"content_security_policy": "script-src {nonce}"},
         "content_security_policy: has {nonce} but csp_nonce is False"),
        ({"permissions_policy": {"camera": ["*", "self"]}}, "permissions_policy"),
        ({"permissions_policy": {"camera": ["https://a.example:\u0663\u0664"]}},
         "permissions_policy"),
        ({"permissions_policy": {"camera": ["https://a..example"]}},
         "permissions_policy"),
    ],
)  # fmt: skip
def test_more_bad_policies_found_by_review(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(
        ValueError, match=message.replace("{", "\\{").replace("}", "\\}")
    ):
        SecurityHeaders(**options)
