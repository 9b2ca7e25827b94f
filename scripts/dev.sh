#!/usr/bin/env bash
# `make dev`: the whole service on this machine, on 127.0.0.1 only.
#   local DynamoDB              :DYNAMODB_PORT (8000)  dynoxide; DYNAMODB=moto for moto
#   cargo lambda watch          :INVOKE_PORT   (9000)  the functions
#   local-gateway               :GATEWAY_PORT  (8080)  WebSocket, chat page, @connections, the
#                                                      fan-out queue's event source
#   moto (SQS, Secrets Manager) :SECRETS_PORT  (8001)  the fan-out queue; the token keys with
#                                                      AUTH_SECRET
# APP=NAME runs the example application examples/NAME (its functions NAME-connect, NAME-message,
# NAME-disconnect) instead of the built-in protocol. APP=php EVENTS=path/to/Events.php serves a
# GatewayWorker Events.php as it is: PHP's built-in server runs it (clients/php/runner.php, on
# EVENTS_PORT, 8090) and the functions forward their events to it. Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."

APP=${APP:-}
DYNAMODB=${DYNAMODB:-dynoxide}
case "$DYNAMODB" in
  dynoxide|moto) ;;
  *) echo "DYNAMODB=$DYNAMODB: set it to dynoxide (the default) or moto" >&2; exit 1 ;;
esac
if [ -n "$APP" ] && [ ! -f "examples/$APP/Cargo.toml" ]; then
  echo "APP=$APP: there is no examples/$APP; the examples are: $(ls examples | tr '\n' ' ')" >&2
  exit 1
fi
if [ "$APP" = php ]; then
  EVENTS=${EVENTS:-}
  [ -f "$EVENTS" ] || { echo "APP=php needs EVENTS=path/to/Events.php (a GatewayWorker Events.php)" >&2; exit 1; }
  command -v php >/dev/null || { echo "APP=php needs PHP 8.1 or later (make backend-tools installs Debian's php-cli)" >&2; exit 1; }
  EVENTS=$(realpath "$EVENTS")
fi
EVENTS_PORT=${EVENTS_PORT:-8090}
# workerman-chat's page connects to port 7272 of the host it was loaded from.
[ "$APP" = workerman-chat ] && GATEWAY_PORT=${GATEWAY_PORT:-7272}
DYNAMODB_PORT=${DYNAMODB_PORT:-8000}
INVOKE_PORT=${INVOKE_PORT:-9000}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
SECRETS_PORT=${SECRETS_PORT:-8001}
TABLE_NAME=${TABLE_NAME:-connections}
STAGE=${STAGE:-dev}
BIN=.tools/venv/bin
LOGS=.dev
mkdir -p "$LOGS"

say() { printf '\033[1m[dev]\033[0m %s\n' "$*"; }
# Each part runs in a process group of its own (setsid), so stopping it stops what it started
# too (cargo lambda watch runs one process per function).
pids=()
stop() {
  trap - INT TERM EXIT
  say "stopping"
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port, what, pid
  for _ in $(seq 1 600); do
    busy "$1" && return 0
    kill -0 "$3" 2>/dev/null || { say "$2 exited; its log is $LOGS/$2.log"; tail -20 "$LOGS/$2.log"; exit 1; }
    sleep 0.1
  done
  say "$2 did not listen on port $1 within 60 s; see $LOGS/$2.log"; exit 1
}
ports=("$DYNAMODB_PORT" "$INVOKE_PORT" "$GATEWAY_PORT" "$SECRETS_PORT")
for port in "${ports[@]}"; do
  if busy "$port"; then say "port $port is taken; stop what uses it or set DYNAMODB_PORT / INVOKE_PORT / GATEWAY_PORT / SECRETS_PORT"; exit 1; fi
done

say "building the functions and the local gateway (the first build takes a few minutes)"
if [ -n "$APP" ]; then
  cargo build -p "$APP" --bins   # as cargo lambda watch builds them
else
  cargo build --bin connect --bin message --bin disconnect --bin fan-out   # fan-out: large sends' workers
fi
cargo build --bin local-gateway --bin api   # api: the server API, served at /api
[ "$DYNAMODB" = dynoxide ] && cargo build --bin local-dynamodb

# The client library, which the chat page imports from the gateway.
if command -v npm >/dev/null; then
  say "building the client library (clients/js)"
  (cd clients/js && { [ -x node_modules/.bin/tsc ] || npm ci --no-audit --no-fund --loglevel=error; } && npm run --silent build)
else
  say "npm not found: the chat page needs the client library (clients/js); install Node.js 20 or later"
fi

say "starting $DYNAMODB (the local DynamoDB) on 127.0.0.1:$DYNAMODB_PORT"
if [ "$DYNAMODB" = dynoxide ]; then
  setsid target/debug/local-dynamodb --listen "127.0.0.1:$DYNAMODB_PORT" >"$LOGS/dynamodb.log" 2>&1 &
else
  setsid "$BIN/python" scripts/dynamodb-server.py -H 127.0.0.1 -p "$DYNAMODB_PORT" >"$LOGS/dynamodb.log" 2>&1 &
fi
pids+=($!); wait_port "$DYNAMODB_PORT" dynamodb $!
"$BIN/python" scripts/create-table.py "http://127.0.0.1:$DYNAMODB_PORT" "$TABLE_NAME"

# moto: the fan-out queue (large sends are spread over the fan-out function through it, as in
# AWS) and, with AUTH_SECRET, the token keys, where the template keeps them in AWS: in a secret,
# which the connect function reads at init. The functions get its ARN, never the key.
say "starting moto (the local SQS and Secrets Manager) on 127.0.0.1:$SECRETS_PORT"
setsid "$BIN/moto_server" -H 127.0.0.1 -p "$SECRETS_PORT" >"$LOGS/moto.log" 2>&1 &
pids+=($!); wait_port "$SECRETS_PORT" moto $!
fan_out_queue=$("$BIN/python" scripts/create-queues.py "http://127.0.0.1:$SECRETS_PORT" fan-out)
if [ -n "${AUTH_SECRET:-}" ]; then
  secret_arn=$("$BIN/python" scripts/create-secret.py "http://127.0.0.1:$SECRETS_PORT" token-keys)
fi

env_vars="TABLE_NAME=$TABLE_NAME,DYNAMODB_ENDPOINT=http://127.0.0.1:$DYNAMODB_PORT"
env_vars+=",MANAGEMENT_ENDPOINT=http://127.0.0.1:$GATEWAY_PORT/$STAGE"
env_vars+=",AWS_ACCESS_KEY_ID=local,AWS_SECRET_ACCESS_KEY=local,AWS_REGION=us-east-1"
# on_open: the $connect function asks the local gateway's Invoke API for the message function,
# as it asks Lambda in AWS (used only by an application that implements on_open).
env_vars+=",ON_OPEN_FUNCTION=${APP:+$APP-}message,LAMBDA_ENDPOINT=http://127.0.0.1:$GATEWAY_PORT"
# Sends past SPREAD_ABOVE recipients (1000 by default) go to the fan-out queue as jobs.
env_vars+=",FAN_OUT_QUEUE_URL=$fan_out_queue,SQS_ENDPOINT=http://127.0.0.1:$SECRETS_PORT"
# The server API's secret (the template keeps it in Secrets Manager): backends sign with it.
API_SECRET=${API_SECRET:-local-server-api-secret}
env_vars+=",API_SECRET=$API_SECRET"
# APP=php: where the functions forward events, and what signs them.
EVENTS_SECRET=${EVENTS_SECRET:-local-events-secret}
[ "$APP" = php ] && env_vars+=",EVENTS_URL=http://127.0.0.1:$EVENTS_PORT/,EVENTS_SECRET=$EVENTS_SECRET"
# Without token keys the functions refuse to start unless told this is development.
if [ -n "${AUTH_SECRET:-}" ]; then
  env_vars+=",AUTH_SECRET_ARN=$secret_arn,SECRETS_MANAGER_ENDPOINT=http://127.0.0.1:$SECRETS_PORT"
else
  env_vars+=",ALLOW_ANONYMOUS=true"
fi
for name in TOKEN_AUDIENCE MAX_TOKEN_LIFETIME_SECONDS MAX_MESSAGE_BYTES CONNECTION_TTL_SECONDS PUSH_CONCURRENCY PUSH_TIMEOUT_MS RATE_LIMIT RATE_WINDOW_SECONDS RATE_CLOSE_MULTIPLE MAX_GROUPS MAX_CONNECTIONS_PER_UID HISTORY_SIZE HISTORY_SECONDS PRESENCE_LIMIT CONNECT_GRACE_SECONDS DYNAMODB_READ_CONCURRENCY DYNAMODB_TIMEOUT_MS SPREAD_ABOVE FAN_OUT_JOB_SIZE FAN_OUT_MAX_AGE_SECONDS FAN_OUT_LEASE_SECONDS RUST_LOG; do
  if [ -n "${!name:-}" ]; then env_vars+=",$name=${!name}"; fi
done
say "starting the functions under cargo lambda watch on 127.0.0.1:$INVOKE_PORT"
# The functions sign pushes with the local credentials above; a session token from the shell
# would be sent with them and refused by the gateway. AUTH_SECRET stays out of their environment
# too: they read the key from the local Secrets Manager, as in AWS.
# DEV_IGNORE_CHANGES=1 (the JavaScript tests) keeps the functions as built, whatever is edited.
watch_flags=()
[ "${DEV_IGNORE_CHANGES:-}" = 1 ] && watch_flags+=(--ignore-changes)
PATH="$PWD/$BIN:$PATH" env -u AWS_SESSION_TOKEN -u AUTH_SECRET -u AUTH_SECRET_ARN setsid cargo lambda watch "${watch_flags[@]}" -A 127.0.0.1 -P "$INVOKE_PORT" --concurrency "${FUNCTION_INSTANCES:-4}" \
  --env-vars "$env_vars" >"$LOGS/functions.log" 2>&1 &
pids+=($!); wait_port "$INVOKE_PORT" functions $!

say "starting the local gateway on 127.0.0.1:$GATEWAY_PORT"
# The gateway accepts pushes signed with the credentials the functions were given, whatever the
# shell has.
# GATEWAY_MAX_LIFETIME and GATEWAY_IDLE_TIMEOUT (seconds) shorten API Gateway's 2 h and 10 min
# limits, to watch clients reconnect.
gateway_flags=()
[ -n "${GATEWAY_MAX_LIFETIME:-}" ] && gateway_flags+=(--max-lifetime "$GATEWAY_MAX_LIFETIME")
[ -n "${GATEWAY_IDLE_TIMEOUT:-}" ] && gateway_flags+=(--idle-timeout "$GATEWAY_IDLE_TIMEOUT")
# Without AUTH_SECRET the functions take anonymous handshakes: the gateway then lets a handshake
# without ?token= (the $connect authorizer's identity source) reach them, where API Gateway, and
# the gateway with a secret, answer it 401 without invoking anything.
[ -n "${AUTH_SECRET:-}" ] || gateway_flags+=(--allow-anonymous)
# GATEWAY_FLAGS passes more (`--drop-disconnects 20`, `--push-rate-limit 100`: local-gateway --help).
env -u AWS_SESSION_TOKEN setsid target/debug/local-gateway --listen "127.0.0.1:$GATEWAY_PORT" \
  --invoke-url "http://127.0.0.1:$INVOKE_PORT" --stage "$STAGE" \
  --access-key-id local --secret-access-key local --region us-east-1 \
  --function-prefix "${APP:+$APP-}" --client-library clients/js/dist "${gateway_flags[@]}" ${GATEWAY_FLAGS:-} \
  --sqs-endpoint "http://127.0.0.1:$SECRETS_PORT" --fan-out-queue-url "$fan_out_queue" \
  --fan-out-timeout "${FAN_OUT_LEASE_SECONDS:-20}" \
  > >(tee "$LOGS/gateway.log") 2>&1 &
pids+=($!); wait_port "$GATEWAY_PORT" gateway $!

if [ "$APP" = php ]; then
  say "starting PHP's built-in server with $EVENTS on 127.0.0.1:$EVENTS_PORT"
  EVENTS_PHP="$EVENTS" EVENTS_SECRET="$EVENTS_SECRET" GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT/api" \
    GATEWAY_SECRET="$API_SECRET" PHP_CLI_SERVER_WORKERS=4 \
    setsid php -S "127.0.0.1:$EVENTS_PORT" clients/php/runner.php >"$LOGS/php.log" 2>&1 &
  pids+=($!); wait_port "$EVENTS_PORT" php $!
fi

mode="anonymous connections; ?uid=NAME binds a uid"
[ -n "${AUTH_SECRET:-}" ] && mode="connections need ?token=<JWT signed with AUTH_SECRET, aud \"${TOKEN_AUDIENCE:-ws}\">"
say "ready ($mode)${APP:+, running examples/$APP}"
say "  wscat -c ws://127.0.0.1:$GATEWAY_PORT      (or: websocat ws://127.0.0.1:$GATEWAY_PORT)"
if [ -n "$APP" ]; then
  if [ "$APP" = php ]; then say "  Events.php: $EVENTS (its errors: $LOGS/php.log)"; else say "  its page: see examples/$APP/README.md"; fi
else
  say "  chat page: http://127.0.0.1:$GATEWAY_PORT/"
fi
say "  server API: http://127.0.0.1:$GATEWAY_PORT/api   GATEWAY_SECRET=$API_SECRET   (docs/server-api.md)"
say "  function logs: $LOGS/functions.log   DynamoDB ($DYNAMODB): http://127.0.0.1:$DYNAMODB_PORT"
say "  large sends (over ${SPREAD_ABOVE:-1000} recipients): the fan-out queue $fan_out_queue"
if [ -n "${AUTH_SECRET:-}" ]; then
  say "  a token: scripts/mint-token.py - alice <<<\"\$AUTH_SECRET\"   (the keys: $secret_arn on http://127.0.0.1:$SECRETS_PORT)"
fi
wait -n "${pids[@]}"
say "a part stopped; see the logs in $LOGS/"
