#!/usr/bin/env bash
# One signed request with curl and openssl: push to a uid.
#   GATEWAY_URL=… GATEWAY_SECRET=… ./curl.sh alice '{"type":"notice","text":"your order shipped"}'
set -euo pipefail
# A nonce: two identical requests in one second would otherwise look like a replay.
body=$(printf '{"nonce":"%s","calls":[{"call":"send","to":{"uid":"%s"},"data":%s}]}' "$(openssl rand -hex 8)" "$1" "$2")
t=$(date +%s)
v1=$(printf '%s.%s' "$t" "$body" | openssl dgst -sha256 -hmac "$GATEWAY_SECRET" -r | cut -d' ' -f1)
curl -sS -X POST "$GATEWAY_URL" -H 'content-type: application/json' \
  -H "x-gateway-signature: t=$t,v1=$v1" --data-binary "$body"
echo
