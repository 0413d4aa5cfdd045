# redis-eventhubs-connector as a container: the build stage makes the same Debian package the CI's
# package stage installs and tests (tests/package/test_package.sh); the runtime stage installs it on
# debian:12-slim and runs the connector as PID 1 (it handles SIGTERM itself: finish in-flight, ack, exit 0).
#   docker build -t redis-eventhubs-connector:0.1.0 .
# Not built in this repository's CI (no container engine there); every step below is one the CI runs.

FROM debian:12 AS build
WORKDIR /src
COPY . .
RUN bash scripts/setup.sh \
 && cmake --preset package \
 && cmake --build --preset package \
 && mkdir /out && cp build/package/redis-eventhubs-connector_*.deb /out/

FROM debian:12-slim
COPY --from=build /out/ /tmp/deb/
# apt resolves the package's own dependencies (shlibdeps: hiredis, Proton, OpenSSL, jemalloc, ...).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates /tmp/deb/redis-eventhubs-connector_*.deb \
 && rm -rf /tmp/deb /var/lib/apt/lists/*
# A fixed numeric user, so Kubernetes' runAsNonRoot can verify it (deploy/kubernetes uses 10001).
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin connector
USER 10001:10001
# HTTP_ADDRESS's default: /metrics, /healthz, /readyz.
EXPOSE 9464
ENTRYPOINT ["/usr/bin/redis-eventhubs-connector"]
