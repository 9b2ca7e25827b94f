#!/usr/bin/env python3
"""Mint an HS256 JWT that $connect accepts.

    mint-token.py SECRET UID [SECONDS] [--groups PATTERNS] [--send PATTERNS] [--aud AUDIENCE]

SECRET is the token secret's JSON text ({"kid":…,"secret":…,"previous":[…]}, as Secrets Manager
holds it: the token is signed with the current key and names it in its header, kid), or a bare
key (make dev's AUTH_SECRET), or - to read either from standard input, which keeps it out of the
process list:

    aws secretsmanager get-secret-value --secret-id "$ARN" --query SecretString --output text \\
      | scripts/mint-token.py - alice

Only the handshake needs the token, so a short life (the default, 300 s) is enough; the service
refuses tokens valid for longer than MAX_TOKEN_LIFETIME_SECONDS (600 by default). The token's aud
is --aud (the stack's TokenAudience, "ws" by default). PATTERNS is a comma-separated list:
--groups 'room-*,lobby' lets the connection join (and see the presence of) matching groups;
--send 'group:room-*,uid:*,connection,all' lets it send to matching targets (docs/protocol.md,
"Authorization"). Without them the token may connect, ping, whoami and leave.
Standard library only, so that it runs wherever Python 3 does.
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys
import time

MAX_LIFETIME = 600


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def patterns(text: str) -> list:
    return [p.strip() for p in text.split(",") if p.strip()]


def current_key(text: str):
    """The key that signs, and its kid (None for a bare key)."""
    if not text.lstrip().startswith("{"):
        return text, None
    try:
        keys = json.loads(text)
    except ValueError:
        sys.exit("the secret starts with { but is not JSON: give its JSON text, or a bare key")
    if not isinstance(keys, dict) or not isinstance(keys.get("secret"), str) or not isinstance(keys.get("kid"), str):
        sys.exit('the secret is not {"kid": …, "secret": …}: give the token secret\'s JSON text')
    return keys["secret"], keys["kid"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("secret", help="the secret's JSON text, a bare key, or - for standard input")
    parser.add_argument("uid")
    parser.add_argument("seconds", nargs="?", type=int, default=300)
    parser.add_argument("--groups", type=patterns, help="group patterns it may join")
    parser.add_argument("--send", type=patterns, help="target patterns it may send to")
    parser.add_argument("--aud", default="ws", help="the audience (the stack's TokenAudience)")
    args = parser.parse_args()
    text = sys.stdin.read().strip() if args.secret == "-" else args.secret
    secret, kid = current_key(text)
    if args.seconds > MAX_LIFETIME:
        print(
            f"warning: {args.seconds} s is longer than the {MAX_LIFETIME} s the service accepts by "
            "default (MAX_TOKEN_LIFETIME_SECONDS): the token will be refused unless it was raised",
            file=sys.stderr,
        )
    claims = {"sub": args.uid, "aud": args.aud, "exp": int(time.time()) + args.seconds}
    if args.groups:
        claims["groups"] = args.groups
    if args.send:
        claims["send"] = args.send
    header = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    print(f"{head}.{body}.{b64(signature)}")


if __name__ == "__main__":
    main()
