#!/usr/bin/env python3
"""Mint an HS256 JWT that $connect accepts.

    mint-token.py SECRET UID [SECONDS] [--groups PATTERNS] [--send PATTERNS]

Only the handshake needs the token, so a short life (the default, 300 s) is enough. PATTERNS is a
comma-separated list: --groups 'room-*,lobby' lets the connection join (and see the presence of)
matching groups; --send 'group:room-*,uid:*,connection,all' lets it send to matching targets
(docs/protocol.md, "Authorization"). Without them the token may connect, ping, whoami and leave.
Standard library only, so that it runs wherever Python 3 does.
"""
import argparse
import base64
import hashlib
import hmac
import json
import time


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def patterns(text: str) -> list:
    return [p.strip() for p in text.split(",") if p.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("secret")
    parser.add_argument("uid")
    parser.add_argument("seconds", nargs="?", type=int, default=300)
    parser.add_argument("--groups", type=patterns, help="group patterns it may join")
    parser.add_argument("--send", type=patterns, help="target patterns it may send to")
    args = parser.parse_args()
    claims = {"sub": args.uid, "exp": int(time.time()) + args.seconds}
    if args.groups:
        claims["groups"] = args.groups
    if args.send:
        claims["send"] = args.send
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(args.secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    print(f"{header}.{body}.{b64(signature)}")


if __name__ == "__main__":
    main()
