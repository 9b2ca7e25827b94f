#!/usr/bin/env python3
"""Mint an HS256 JWT that $connect accepts: mint-token.py SECRET UID [SECONDS].

Only the handshake needs the token, so a short life (the default, 300 s) is enough. Standard
library only, so that it runs wherever Python 3 does.
"""
import base64
import hashlib
import hmac
import json
import sys
import time


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: mint-token.py SECRET UID [SECONDS]")
    secret, uid = sys.argv[1], sys.argv[2]
    seconds = int(sys.argv[3]) if len(sys.argv) == 4 else 300
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": uid, "exp": int(time.time()) + seconds}).encode())
    signature = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    print(f"{header}.{claims}.{b64(signature)}")


if __name__ == "__main__":
    main()
