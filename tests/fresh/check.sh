#!/usr/bin/env bash
# Fresh-machine check: does the README's way in work on a machine that has nothing yet?
# In a clean debian:bookworm-slim container, on a clean clone of HEAD (uncommitted files stay out), as
# root: scripts/deps, the build, README's first command serving the demo page, then a smoke subset of
# the suite that touches every dependency at least once (tests/fresh/inside.sh says which test covers
# which). So a package that the suite uses but scripts/deps does not install, or an npm package that
# Debian's Node 18 cannot run, fails here, even on a machine that happens to have it already.
#
# Runs with podman (when `podman info` works; the base image must be local: ../shared/tools/docker-check.sh
# makes one, or `podman pull debian:bookworm-slim`) or docker. With no working engine it prints
# "SKIPPED: ..." and exits 77. Every wait is bounded; the container and the clone are removed on exit.
#
# Downloads are cached between runs in $FRESH_CACHE (apt's .deb files and lists, npm's cache): each run
# still installs every package into the clean image. A second run at the same time goes without the cache.
#
# Env: SWITCHBOARD_SRC (repo root; default: two levels up from here)  CONTAINER_ENGINE=docker|podman
#      FRESH_TESTS (ctest -R regex of the smoke subset; default in inside.sh)  FRESH_FULL=1 (run the
#      whole scripts/test instead of the smoke subset)  FRESH_TIMEOUT (s; default 2400, 5400 with FRESH_FULL)
#      FRESH_CACHE (default /var/cache/switchboard-fresh; "none": no cache)
set -uo pipefail
{ # one block, read whole before it runs: editing this file during a run changes nothing
export PATH=$PATH:/usr/sbin:/sbin   # podman's network helpers call iptables & co.

SRC=${SWITCHBOARD_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BASE=docker.io/library/debian:bookworm-slim
FULL=${FRESH_FULL:-0}
TIMEOUT=${FRESH_TIMEOUT:-$([ "$FULL" = 1 ] && echo 5400 || echo 2400)}
CACHE=${FRESH_CACHE:-/var/cache/switchboard-fresh}
NAME=sb-fresh-check-$$
TMP=$(mktemp -d /tmp/sb-fresh.XXXXXX)

say() { echo "== $* [${SECONDS}s]"; }
skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    [ -n "${E:-}" ] && timeout 60 "$E" rm -f "$NAME" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. an engine and the base image ------------------------------------------------------------------
# shellcheck source=tests/container/engine.sh
source "$SRC/tests/container/engine.sh"
pick_engine
RUN=("$E" run --name "$NAME" --rm)
[ "$E" = podman ] && RUN+=(--pull=never)
say "engine: $E ($($E --version 2>/dev/null | head -1)), image $BASE"

# --- 2. a clean clone of HEAD -------------------------------------------------------------------------
command -v git >/dev/null || fail "git is needed to clone $SRC"
sha=$(git -C "$SRC" rev-parse HEAD) || fail "$SRC is not a git checkout"
{ git clone -q --no-checkout "$SRC" "$TMP/src" && git -C "$TMP/src" checkout -q --detach "$sha"; } \
    || fail "git clone of $SRC at $sha failed"
dirty=$(git -C "$SRC" status --porcelain --untracked-files=no | wc -l)
say "checking $(git -C "$TMP/src" log -1 --format='%h %s' | cut -c1-90)"
[ "$dirty" = 0 ] || echo "   ($dirty uncommitted changes in $SRC are not part of this check: commit them first)"

# --- 3. the download cache (one run at a time uses it) -------------------------------------------------
MOUNTS=(-v "$TMP/src:/src")
if [ "$CACHE" != none ] && mkdir -p "$CACHE"/{apt-archives/partial,apt-lists/partial,npm} \
        && exec 9>"$CACHE/lock" && flock -n 9; then
    MOUNTS+=(-v "$CACHE/apt-archives:/var/cache/apt/archives" -v "$CACHE/apt-lists:/var/lib/apt/lists"
             -v "$CACHE/npm:/root/.npm")
    say "download cache: $CACHE ($(du -sh "$CACHE" 2>/dev/null | cut -f1))"
else
    say "download cache: none (FRESH_CACHE=none, or another run holds $CACHE)"
fi

# A machine whose network inspects TLS trusts that network's CA through /usr/local/share/ca-certificates;
# a fresh machine there would have it too, so it goes in (read-only) before ca-certificates installs, and
# Node (npm) is told to use the system's store. Elsewhere that folder is empty and nothing changes.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    MOUNTS+=(-v /usr/local/share/ca-certificates:/usr/local/share/ca-certificates:ro
             -e NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
    say "local CAs: $(cd /usr/local/share/ca-certificates && echo *.crt)"
fi

# --- 4. deps, build, README, smoke: inside the container -----------------------------------------------
say "running tests/fresh/inside.sh in $NAME (bounded to ${TIMEOUT}s)"
timeout "$TIMEOUT" "${RUN[@]}" "${MOUNTS[@]}" -w /src \
    -e FRESH_FULL="$FULL" -e FRESH_TESTS="${FRESH_TESTS:-}" "$BASE" bash tests/fresh/inside.sh
rc=$?
[ "$rc" = 124 ] && fail "the container run took over ${TIMEOUT}s"
[ "$rc" = 0 ] || fail "on a fresh debian:bookworm-slim (exit $rc, see above)"
echo "PASS: fresh-machine check ($E, $BASE, ${SECONDS}s)"
exit 0
}
