#!/usr/bin/env bash
# Container check: builds the repo's Dockerfile and checks the image the way users run it
# (docker build -t switchboard . && docker run --rm -p 8080:8080 switchboard):
#   built as an image; runs as non-root with the server as PID 1; /healthz answers 200 and the image's
#   HEALTHCHECK reports healthy; GET / is the demo page (www/index.html's <title>), and its client library
#   (js/switchboard-client.js, a link in the repository) is clients/js/index.js; a WebSocket client
#   gets its welcome; `stop` (SIGTERM) gives that client close 1001 and the container exits 0 within 5 s.
# Runs with docker (when `docker info` works) or podman (when `podman info` works); with neither it
# prints "SKIPPED: ..." and exits 77 (ctest: SKIP_RETURN_CODE 77). Publishes on 127.0.0.1 only, on a port
# the engine picks. Every wait is bounded; the container and the image are removed on exit.
#
# Env: SWITCHBOARD_SRC (repo root; default: two levels up from here)  CONTAINER_ENGINE=docker|podman
#      SB_PYTHON (default /usr/bin/python3, with Debian's python3-websockets)  BUILD_TIMEOUT=900 (s)
#      KEEP_IMAGE=1 (do not remove the image)
set -uo pipefail
export PATH=$PATH:/usr/sbin:/sbin   # podman's network helpers call iptables & co.

SRC=${SWITCHBOARD_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${SB_PYTHON:-/usr/bin/python3}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-900}
BASE=docker.io/library/debian:bookworm-slim
STOP_LIMIT=6   # the server promises 5 s; 1 s for the engine's own work
TAG=sb-container-check-$$
NAME=sb-container-check-$$
TMP=$(mktemp -d)
CLIENT=

say() { echo "== $* [${SECONDS}s]"; }
skip() { echo "SKIPPED: $*"; exit 77; }
fail() {
    echo "FAIL: $*"
    [ -s "${ENGINE_LOG:-}" ] && sed 's/^/  engine: /' "$ENGINE_LOG"
    if [ -n "${E:-}" ] && $E inspect "$NAME" >/dev/null 2>&1; then
        timeout 30 $E logs "$NAME" 2>&1 | tail -30 | sed 's/^/  container log: /'
    fi
    exit 1
}
cleanup() {
    [ -n "$CLIENT" ] && kill "$CLIENT" 2>/dev/null
    if [ -n "${E:-}" ]; then
        timeout 30 $E rm -f "$NAME" >/dev/null 2>&1
        if [ "${KEEP_IMAGE:-0}" != 1 ] && [ -n "${IMAGE:-}" ]; then
            timeout 60 $E rmi -f "$IMAGE" >/dev/null 2>&1
        fi
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. an engine, the tools, the base image ---------------------------------------------------------
# shellcheck source=tests/container/engine.sh
source "$HERE/engine.sh"
pick_engine
say "engine: $E ($($E --version 2>/dev/null | head -1))"
[ "$E" = podman ] && IMAGE=localhost/$TAG:latest || IMAGE=$TAG:latest

[ -f "$SRC/Dockerfile" ] || fail "no Dockerfile in $SRC"
[ -f "$SRC/www/index.html" ] || fail "no www/index.html in $SRC (the demo page the image serves)"
"$PY" -c 'import websockets' 2>/dev/null \
    || fail "$PY cannot import websockets (apt-get install python3-websockets, or set SB_PYTHON)"

if [ "$E" = podman ]; then   # (engine.sh made sure the base image is local)
    # --format docker keeps HEALTHCHECK (the OCI image format has no field for it).
    BUILD=(podman build --pull=never --format docker --force-rm -t "$IMAGE")
else
    BUILD=(docker build --force-rm -t "$IMAGE")
fi

# --- 2. build -----------------------------------------------------------------------------------------
say "building $SRC -> $IMAGE"
timeout "$BUILD_TIMEOUT" "${BUILD[@]}" "$SRC" >"$TMP/build.log" 2>&1 \
    || { tail -40 "$TMP/build.log"; fail "image build failed or took over ${BUILD_TIMEOUT}s"; }
size=$($E image inspect -f '{{.Size}}' "$IMAGE")
say "built; image size $((size / 1000000)) MB ($size bytes)"
[ "$size" -lt 100000000 ] || echo "WARN: the runtime image is over 100 MB"

# --- 3. run, published on 127.0.0.1 on a free port ---------------------------------------------------
# engine chatter (e.g. podman without systemd: "unable to get systemd connection to add healthchecks")
# goes to a file, shown on failure
ENGINE_LOG=$TMP/engine.log
timeout 60 $E run -d --name "$NAME" -p 127.0.0.1::8080 "$IMAGE" >/dev/null 2>>"$ENGINE_LOG" \
    || fail "$E run failed"
PORT=$(timeout 30 $E port "$NAME" 8080/tcp | sed -n 's/^127\.0\.0\.1:\([0-9]*\)$/\1/p' | head -1)
[ -n "$PORT" ] || fail "no 127.0.0.1 port published for 8080/tcp ($($E port "$NAME" 2>&1))"
URL=http://127.0.0.1:$PORT
say "running $NAME on $URL"

"$PY" "$HERE/probe.py" health "$URL/healthz" 30 || fail "/healthz never answered 200"

# non-root, and the server itself is PID 1 (so SIGTERM reaches it)
user=$($E inspect -f '{{.Config.User}}' "$NAME")
uid=$(timeout 30 $E exec "$NAME" id -u | tr -d '\r')
say "Config.User='$user', id -u in the container: $uid"
case "$user" in ""|root|0|0:*|root:*) fail "the image sets no non-root USER (Config.User='$user')";; esac
[[ "$uid" =~ ^[0-9]+$ ]] && [ "$uid" != 0 ] || fail "the container runs as uid '$uid'"
pid1=$(timeout 30 $E exec "$NAME" cat /proc/1/cmdline | tr '\0' ' ')
say "PID 1: $pid1"
case "${pid1%% *}" in switchboard|*/switchboard) ;;
    *) fail "PID 1 is '${pid1% }', not switchboard: SIGTERM would not reach the server (use exec-form ENTRYPOINT)";;
esac
if timeout 30 $E exec "$NAME" sh -c 'command -v gcc || command -v cc || command -v cmake' >/dev/null 2>&1; then
    fail "the runtime image contains a compiler or cmake: the build stage leaked into it"
fi

# the image's HEALTHCHECK (switchboard --healthcheck), as the engine runs it
if [ "$E" = podman ]; then
    ok=
    for _ in 1 2 3 4 5; do
        timeout 30 podman healthcheck run "$NAME" >/dev/null 2>&1 && { ok=1; break; }
        sleep 2
    done
    [ -n "$ok" ] || fail "podman healthcheck run $NAME did not report healthy ($(podman healthcheck run "$NAME" 2>&1))"
    health=healthy
elif docker version -f '{{range .Server.Components}}{{.Name}} {{end}}' 2>/dev/null | grep -q Podman; then
    # the docker CLI on Podman's API: its health timers need systemd, so run the image's test command
    test_json=$(docker inspect -f '{{if .Config.Healthcheck}}{{json .Config.Healthcheck.Test}}{{else}}null{{end}}' "$NAME")
    mapfile -t hc < <("$PY" -c 'import json,sys; t=json.loads(sys.argv[1]) or ["NONE"]
if t[0] == "CMD-SHELL": t = ["CMD", "/bin/sh", "-c", t[1]]
print("\n".join(t[1:] if t[0] == "CMD" else []))' "$test_json")
    [ "${#hc[@]}" -gt 0 ] || fail "the image has no HEALTHCHECK (Config.Healthcheck.Test = $test_json)"
    timeout 30 docker exec "$NAME" "${hc[@]}" >/dev/null 2>&1 || fail "the HEALTHCHECK command (${hc[*]}) failed"
    health="healthy (ran ${hc[*]}: the Podman API behind docker runs no health timers without systemd)"
else
    health=
    for _ in $(seq 60); do   # the first probe runs one --interval (10 s) after start
        health=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$NAME")
        [ "$health" = healthy ] && break
        sleep 1
    done
    [ "$health" = healthy ] || fail "HEALTHCHECK status is '${health:-none}' after 60s, want healthy"
fi
say "healthcheck: $health"

"$PY" "$HERE/probe.py" page "$URL/" "$SRC/www/index.html" || fail "GET / is not the demo page"
"$PY" "$HERE/probe.py" same "$URL/js/switchboard-client.js" "$SRC/clients/js/index.js" ||
    fail "the page's client library is not clients/js/index.js"

# --- 4. a WebSocket client gets its welcome; stop (SIGTERM) gives it close 1001 and exit code 0 ------
"$PY" "$HERE/probe.py" ws "ws://127.0.0.1:$PORT/ws?user=container-check" "$TMP/ready" 30 >"$TMP/ws.log" 2>&1 &
CLIENT=$!
for _ in $(seq 100); do [ -e "$TMP/ready" ] || ! kill -0 "$CLIENT" 2>/dev/null && break; sleep 0.1; done
cat "$TMP/ws.log"
[ -e "$TMP/ready" ] || fail "the WebSocket client got no welcome within 10s"

say "$E stop $NAME (SIGTERM)"
t0=$(date +%s%N)
timeout 60 $E stop -t 10 "$NAME" >/dev/null 2>>"$ENGINE_LOG" || fail "$E stop failed"
took_ms=$((($(date +%s%N) - t0) / 1000000))
wait "$CLIENT"; client_rc=$?; CLIENT=
grep -v '^ws: welcome' "$TMP/ws.log"
[ "$client_rc" = 0 ] || fail "the WebSocket client did not get close 1001 on SIGTERM"
ec=$($E inspect -f '{{.State.ExitCode}}' "$NAME")
say "stopped in ${took_ms} ms, exit code $ec"
[ "$ec" = 0 ] || fail "exit code after SIGTERM is $ec, want 0 (137 = SIGTERM ignored, killed after 10s)"
[ "$took_ms" -le $((STOP_LIMIT * 1000)) ] || fail "stop took ${took_ms} ms, want at most 5 s (+1 s for the engine)"

echo "PASS: container check ($E, image $((size / 1000000)) MB)"
