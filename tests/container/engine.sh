# shellcheck shell=bash
# engine.sh: sourced by tests/container/check.sh and tests/fresh/check.sh, which define skip() and BASE.
# pick_engine sets E to the container engine that answers `info`: $CONTAINER_ENGINE, else docker, else
# podman; with none it skips (exit 77). podman is assumed to reach no registry, so $BASE must already be
# local (../shared/tools/docker-check.sh makes one with debootstrap; elsewhere `podman pull`).
engine_works() { command -v "$1" >/dev/null 2>&1 && timeout 30 "$1" info >/dev/null 2>&1; }

pick_engine() {
    E=
    if [ -n "${CONTAINER_ENGINE:-}" ]; then
        engine_works "$CONTAINER_ENGINE" || skip "CONTAINER_ENGINE=$CONTAINER_ENGINE but '$CONTAINER_ENGINE info' fails"
        E=$CONTAINER_ENGINE
    elif engine_works docker; then E=docker
    elif engine_works podman; then E=podman
    else
        skip "no container engine (docker or podman) found ('docker info' and 'podman info' both fail or are missing)"
    fi
    if [ "$E" = podman ]; then
        podman image exists "$BASE" \
            || skip "podman has no local $BASE (run ../shared/tools/docker-check.sh once, or podman pull $BASE)"
    fi
}
