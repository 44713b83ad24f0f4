#!/usr/bin/env bash
# Runs switchboard under valgrind (memcheck) through a short scenario (scenario.py: every PROTOCOL.md
# example, every error reply, rooms to their limit, echo mode, protocol violations, peers that vanish,
# refused handshakes, HTTP, then SIGTERM with clients connected) and judges the report.
#
#   tests/valgrind/run.sh [BINARY]      BINARY defaults to build/switchboard of this checkout (a plain
#                                       build, not ASan/TSan)
#
# Fails (exit 1) if valgrind reports any error that is not a leak (invalid read/write, uninitialised
# value, bad free, syscall parameter...), or a "definitely lost" block whose allocation stack has a
# frame in switchboard's own code (app/). Definite leaks entirely inside libraries (CivetWeb, libc) are
# listed but do not fail the run. Also fails if the scenario fails or the server does not exit 0 (or
# valgrind's 99) after SIGTERM. Exit 77 (SKIPPED) without valgrind. Every wait is bounded.
# Environment: SB_VALGRIND_DIR keeps the logs there (default: a temporary directory, removed on success);
# SB_VALGRIND_BAD_KEY=1 adds handshakes with an over-long Sec-WebSocket-Key (a known leak, see the
# hardening report) to the scenario.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
bin=${1:-$src/build/switchboard}
py=/usr/bin/python3
startup_s=60   # valgrind starts ~1000x slower than native here
scenario_s=600
exit_s=120

if ! command -v valgrind >/dev/null 2>&1; then
  echo "SKIPPED: valgrind is not installed (apt-get install valgrind)"
  exit 77
fi
if [ ! -x "$bin" ]; then
  echo "FAIL: $bin is not an executable (build it first, or pass its path)"
  exit 1
fi
if ldd "$bin" | grep -qE 'lib(a|t)san'; then
  echo "FAIL: $bin is a sanitizer build; valgrind needs a plain one"
  exit 1
fi

dir=${SB_VALGRIND_DIR:-$(mktemp -d /tmp/switchboard-valgrind.XXXXXX)}
mkdir -p "$dir"
port=$($py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "valgrind: $bin on 127.0.0.1:$port, logs in $dir"

# A small worker pool: valgrind runs every thread in turn (and allows 500 by default). Presence global,
# as the PROTOCOL.md blocks the scenario replays here and its own steps expect.
valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 --track-fds=no \
  --num-callers=40 --fair-sched=yes --xml=yes --xml-file="$dir/valgrind.xml" \
  "$bin" --port "127.0.0.1:$port" --root "$src/www" --max-connections 24 --max-message 1000 \
  --ping-interval 20 --presence global >"$dir/server.log" 2>&1 &
pid=$!
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; fi; }
trap cleanup EXIT

ready=0
for _ in $(seq 1 $((startup_s * 4))); do
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
  if $py -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=5).status == 200 else 1)" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.25
done
if [ $ready -ne 1 ]; then
  echo "FAIL: the server did not answer /healthz within ${startup_s} s under valgrind"
  tail -20 "$dir/server.log"
  exit 1
fi

scenario_ok=1
if [ "${SB_VALGRIND_BAD_KEY:-0}" = 1 ]; then
  $py - "$port" <<'EOF' || scenario_ok=0
import socket, sys
port = int(sys.argv[1])
for i in range(3):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (port, "A" * 64)).encode())
    print("scenario: over-long key ->", s.recv(100).split(b"\r\n")[0].decode())
    s.close()
EOF
fi
SB_SANITIZE=1 timeout "$scenario_s" $py "$here/scenario.py" "$port" "$pid" || scenario_ok=0
if [ $scenario_ok -ne 1 ]; then
  kill -TERM "$pid" 2>/dev/null
fi

rc=
for _ in $(seq 1 $((exit_s * 4))); do
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"
    rc=$?
    break
  fi
  sleep 0.25
done
if [ -z "$rc" ]; then
  echo "FAIL: the server did not exit within ${exit_s} s of SIGTERM under valgrind"
  exit 1
fi
trap - EXIT

# Judge the XML report: every <error> is one record; leaks carry their allocation stack.
$py - "$dir/valgrind.xml" "$bin" <<'EOF'
import os
import sys
import xml.etree.ElementTree as ET

path, exe = sys.argv[1], os.path.realpath(sys.argv[2])
root = ET.parse(path).getroot()
other, app_leaks, lib_leaks = [], [], []
totals = {}
for err in root.iter("error"):
    kind = err.findtext("kind")
    what = err.findtext("xwhat/text") or err.findtext("what") or kind
    frames = []
    for fr in err.find("stack").iter("frame"):
        fn = fr.findtext("fn") or fr.findtext("ip") or "???"
        d, f, ln = fr.findtext("dir"), fr.findtext("file"), fr.findtext("line")
        where = "%s/%s:%s" % (d, f, ln) if f else (fr.findtext("obj") or "")
        # switchboard's code: a source file in app/, or (no debug info) the switchboard binary itself
        in_app = (bool(d) and ("/app/" in d.rstrip("/") + "/")) or (
            not f and bool(fr.findtext("obj")) and os.path.realpath(fr.findtext("obj")) == exe)
        frames.append((fn, where, in_app))
    record = (kind, what, frames)
    if kind.startswith("Leak_"):
        n, b = totals.get(kind, (0, 0))
        totals[kind] = (n + 1, b + int(err.findtext("xwhat/leakedbytes") or 0))
        if kind == "Leak_DefinitelyLost":
            (app_leaks if any(a for _, _, a in frames) else lib_leaks).append(record)
    else:
        other.append(record)

def show(title, records):
    print("%s: %d" % (title, len(records)))
    for kind, what, frames in records:
        print("  - %s: %s" % (kind, what))
        for fn, where, in_app in frames[:14]:
            print("      %s %s  %s" % ("*" if in_app else " ", fn, where))

print("---- valgrind summary (* = a frame in app/) ----")
print("leak records: %s" % (", ".join("%s %d (%d bytes)" % (k[5:], n, b) for k, (n, b) in sorted(totals.items()))
                            or "none"))
show("errors other than leaks", other)
show("definitely lost, allocated through app/", app_leaks)
show("definitely lost, inside libraries only (not failing)", lib_leaks)
sys.exit(1 if other or app_leaks else 0)
EOF
judged=$?

status=0
if [ $scenario_ok -ne 1 ]; then echo "FAIL: the scenario failed (see above)"; status=1; fi
if [ "$rc" != 0 ] && [ "$rc" != 99 ]; then echo "FAIL: exit code $rc after SIGTERM"; status=1; fi
if [ $judged -ne 0 ]; then echo "FAIL: valgrind found errors in switchboard (see above; full report $dir/valgrind.xml)"; status=1; fi
if [ $status -eq 0 ]; then
  echo "PASS: valgrind clean for switchboard's code (exit code $rc)"
  [ -z "${SB_VALGRIND_DIR:-}" ] && rm -rf "$dir"
else
  echo "logs kept in $dir"
fi
exit $status
