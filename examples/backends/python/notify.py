"""Push to a uid and to a group, and read the group's presence, through the server API's function
URL, with nothing but Python's standard library.

    GATEWAY_URL=https://<id>.lambda-url.<region>.on.aws/ GATEWAY_SECRET=<the ApiSecret> \
        python3 notify.py alice room-1
"""
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request


def call(*calls):
    """Runs the calls in one signed request; their results, in order."""
    # A nonce: two identical requests in one second would otherwise look like a replay.
    body = json.dumps({"nonce": secrets.token_hex(8), "calls": list(calls)}).encode()
    t = str(int(time.time()))
    mac = hmac.new(os.environ["GATEWAY_SECRET"].encode(), t.encode() + b"." + body, hashlib.sha256)
    request = urllib.request.Request(
        os.environ["GATEWAY_URL"],
        data=body,
        method="POST",
        headers={
            "content-type": "application/json",
            "x-gateway-signature": f"t={t},v1={mac.hexdigest()}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["results"]
    except urllib.error.HTTPError as refused:
        sys.exit(f"the server API refused the request ({refused.code}): {refused.read().decode()}")


if __name__ == "__main__":
    uid, group = sys.argv[1], sys.argv[2]
    print(json.dumps(call(
        {"call": "send", "to": {"uid": uid}, "data": {"type": "notice", "text": "your order shipped"}},
        {"call": "send", "to": {"group": group}, "data": "the room hears this"},
        {"call": "presence", "group": group},
    )))
