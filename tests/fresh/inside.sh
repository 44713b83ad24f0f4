#!/usr/bin/env bash
# Run by tests/fresh/check.sh inside a clean debian:bookworm-slim container, as root, in a clean clone
# (/src): what a new user does (README), then a smoke subset of the suite. Not meant for a real machine.
#
# The smoke subset touches every dependency scripts/deps installs at least once:
#   unit.*, fuzz.* (corpus replay)  the C toolchain, the -dev libraries
#   third_party.civetweb            patch (the vendored CivetWeb is Debian's source plus our patch)
#   integration.test_identity       Python websockets; PyJWT with HS256, RS256 and ES256 (so
#                                   python3-cryptography); the openssl command (its keys)
#   integration.test_token_cli      python3-cryptography directly
#   integration.test_api_doc        curl (API.md's examples)
#   integration.test_cluster_haproxy  redis-server and haproxy
#   e2e.chat, e2e.token             Chromium on the demo page; Node's ws and jose; playwright-core on
#                                   Debian's Node 18
#   client.types                    typescript (tsc on clients/js's index.d.ts), on Debian's Node 18
#   valgrind.memcheck               valgrind (and libc6-dbg)
#   a one-line libFuzzer target     clang and libclang-rt-14-dev (scripts/fuzz's compiler and runtime)
#   integration.test_proxies        nginx, HAProxy and Caddy in front of the server, with openssl's certificate
# FRESH_TESTS replaces the ctest regex; FRESH_FULL=1 runs the whole scripts/test instead.
set -euo pipefail
cd /src
SMOKE='^(unit\..*|fuzz\..*|third_party\..*|integration\.test_(identity|token_cli|api_doc|cluster_haproxy|proxies)|e2e\.(chat|token)|client\.types|valgrind\.memcheck)$'
TESTS=${FRESH_TESTS:-$SMOKE}
t0=$SECONDS
step() { echo "== fresh: $* [$((SECONDS - t0))s]"; }
took() { echo "== fresh: $1 took $((SECONDS - $2))s"; }

# The image deletes downloaded .deb files after each install; keep them in check.sh's cache volume.
# The install itself is a real one either way (every package unpacked and configured).
rm -f /etc/apt/apt.conf.d/docker-clean
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/90fresh-keep-debs
# No fsync per unpacked file (Docker's usual apt speed-up): a throwaway container need not survive a
# power cut.
echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/90fresh-unsafe-io
command -v node >/dev/null && { echo "FAIL: the image already has node: not a fresh machine"; exit 1; }

# README's first command, in its two halves: scripts/deps, then the build. build/switchboard, its
# last part, serves the demo page on port 8080: checked below.
step "scripts/deps"; t=$SECONDS
scripts/deps
took "scripts/deps" "$t"
echo "   node $(node --version) (dpkg: $(dpkg-query -W -f '${Package} ${Version}' nodejs)), npm $(npm --version)," \
     "$(chromium --version 2>/dev/null | head -1)"
for tool in nginx caddy redis-server haproxy valgrind clang curl openssl; do
    command -v "$tool" >/dev/null || { echo "FAIL: scripts/deps did not install $tool"; exit 1; }
done

step "build (cmake -S . -B build && cmake --build build -j)"; t=$SECONDS
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >build.log 2>&1 || { tail -40 build.log; exit 1; }
took "build" "$t"

step "README: build/switchboard serves the demo page on http://localhost:8080"
build/switchboard >readme-server.log 2>&1 &
server=$!
title=$(sed -n 's:.*<title>\(.*\)</title>.*:\1:p' www/index.html | head -1)
page=
for _ in $(seq 100); do
    page=$(curl -fsS --max-time 2 http://localhost:8080/ 2>/dev/null) && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
kill -TERM "$server" 2>/dev/null; wait "$server" || true
if [ -z "$title" ] || [[ "$page" != *"<title>$title</title>"* ]]; then
    echo "FAIL: GET http://localhost:8080/ is not the demo page (<title>$title</title>)"; cat readme-server.log; exit 1
fi
echo "   GET / answered the demo page (<title>$title</title>)"

if [ "${FRESH_FULL:-0}" = 1 ]; then
    step "README: scripts/test (the whole suite)"; t=$SECONDS
    rc=0; scripts/test || rc=$?
    took "scripts/test" "$t"
    exit $rc
fi

step "clang's libFuzzer (scripts/fuzz's compiler and runtime): a one-line target"
scratch=$(mktemp -d)
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
    >"$scratch/t.c"
clang -g -fsanitize=fuzzer,address,undefined "$scratch/t.c" -o "$scratch/t"
"$scratch/t" -runs=1000 >"$scratch/log" 2>&1 || { tail -20 "$scratch/log"; exit 1; }
grep -E '^Done ' "$scratch/log" | sed 's/^/   libFuzzer: /'

step "smoke subset: ctest -R '$TESTS'"; t=$SECONDS
rc=0; ctest --test-dir build -R "$TESTS" --output-on-failure -j"$(nproc)" || rc=$?
took "smoke subset" "$t"
exit $rc
