# switchboard: WebSocket message server (CivetWeb vendored in third_party/, cJSON from Debian bookworm).
#   docker build -t switchboard . && docker run --rm -p 8080:8080 switchboard
#   then browse to http://localhost:8080
# Every setting is an environment variable (SWITCHBOARD_*, see docs/CLI.md). No heredocs (podman 4.3).

# ---- build stage: compiler, CMake, the -dev packages and the vendored CivetWeb (third_party/) ---------------------------------------------
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make cmake libcjson-dev libssl-dev libhiredis-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY third_party/ third_party/
COPY app/ app/
RUN cmake -S . -B build -DSB_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build -j \
 && strip build/switchboard \
 && build/switchboard --version

# ---- runtime stage: the runtime libraries, the binary and www/ ----------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcjson1 libssl3 libhiredis0.14 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin switchboard
COPY --from=build /src/build/switchboard /usr/local/bin/switchboard
COPY www/ /usr/share/switchboard/www/
# www/js/switchboard-client.js is a link to the client library (clients/js), left out of the context
# (.dockerignore): the file itself here
COPY clients/js/index.js /usr/share/switchboard/www/js/switchboard-client.js

# Container defaults: listen on every interface of the container (port 8080), serve the bundled page.
# The other variables keep the server's own defaults unless set:
#   SWITCHBOARD_ALLOW_ORIGINS (comma list, e.g. http://localhost:3000), SWITCHBOARD_MAX_MESSAGE,
#   SWITCHBOARD_MAX_CONNECTIONS, SWITCHBOARD_HTTP_THREADS, SWITCHBOARD_OUTBOX, SWITCHBOARD_PING_INTERVAL,
#   SWITCHBOARD_RATE_LIMIT.
ENV SWITCHBOARD_PORT=8080 \
    SWITCHBOARD_ROOT=/usr/share/switchboard/www \
    SWITCHBOARD_LOG_LEVEL=info

USER 10001:10001
EXPOSE 8080
# The binary probes http://127.0.0.1:$SWITCHBOARD_PORT/healthz itself: no curl/wget in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/switchboard", "--healthcheck"]
# SIGTERM (docker stop) closes every WebSocket with 1001 and exits 0; exec form, so the server is PID 1
# and gets the signal itself.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/switchboard"]
