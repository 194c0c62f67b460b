"""Session signing: our signer (``middleware.session.codec``) against WebOb's
public :class:`~webob.cookies.SignedSerializer`, on the same payload and key.

Both make the same format (HMAC-SHA256, URL-safe base64 of signature + payload);
WebOb's public API hands :func:`hmac.new` a hash factory, so the stdlib builds the
HMAC in Python, where ours calls :func:`hmac.digest` with the hash's name. Printed:
the median microseconds of a sign and of a verify, and WebOb's cost over ours.

Run: ``python benchmarks/bench_codec.py [--repeat 15] [--number 20000]``
"""

from __future__ import annotations

import argparse
import json

import harness
from webob.cookies import SignedSerializer

from middleware.session.codec import Signer

SECRET = b"k" * 32
SALT = "middleware.session.cookie"
PAYLOAD = json.dumps({"c": 1, "t": 2, "d": {"user": "alice", "count": 3}}).encode()


class _Bytes:
    @staticmethod
    def dumps(data: bytes) -> bytes:
        return data

    @staticmethod
    def loads(data: bytes) -> bytes:
        return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    ours = Signer(SECRET, SALT)
    webob = SignedSerializer(SECRET, SALT, "sha256", serializer=_Bytes())
    value = ours.dumps(PAYLOAD)
    assert webob.loads(value) == PAYLOAD and ours.loads(webob.dumps(PAYLOAD)) == PAYLOAD
    timings = harness.medians_us(
        {
            "sign ours": lambda: ours.dumps(PAYLOAD),
            "sign webob": lambda: webob.dumps(PAYLOAD),
            "verify ours": lambda: ours.loads(value),
            "verify webob": lambda: webob.loads(value),
        },
        number=args.number,
        repeat=args.repeat,
    )
    print(f"us per call (median of {args.repeat} x {args.number}, measured in turns)")
    for kind in ("sign", "verify"):
        mine, theirs = timings[f"{kind} ours"], timings[f"{kind} webob"]
        print(
            f"  {kind:<7} ours {mine:6.2f}   webob {theirs:6.2f}   {theirs / mine:.2f}x"
        )


if __name__ == "__main__":
    main()
