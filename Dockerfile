# syntax=docker/dockerfile:1
# boxwatch container image: one binary, `boxwatch`, with every subcommand
# (worker, dispatcher, hub, profile, topics, ...). docs/deploy.md explains how
# to build it and how the Kubernetes manifests in deploy/k8s/ run it.
#
#   docker build -t boxwatch:0.1.0 .
#
# Stage 1 builds with exactly the commands the test command uses
# (scripts/setup, then scripts/build release); stage 2 carries the binary and
# the shared libraries it links, nothing else.

FROM debian:12 AS builder
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
COPY . /src
# A build/ directory from the host is excluded by .dockerignore; start clean
# anyway so a stale CMake cache can never leak into the image.
RUN rm -rf build \
 && scripts/setup \
 && BOXWATCH_BUILD_JOBS="${BOXWATCH_BUILD_JOBS:-$(nproc)}" scripts/build release --target boxwatch \
 && strip --strip-unneeded build/release/app/boxwatch \
 && build/release/app/boxwatch --version

FROM debian:12 AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# librdkafka 2.8.0 as scripts/setup backported it from Debian 13 in the
# builder stage (Debian 12's 2.0.2 cannot talk to Kafka 4 brokers).
COPY --from=builder /root/.cache/boxwatch/librdkafka-2.8.0/librdkafka1_2.8.0-1~bpo12+1_amd64.deb /tmp/debs/
# Runtime libraries only (Debian 12 package names; `apt-cache policy NAME`
# shows each). Their own dependencies (libgrpc29, libabsl, libre2, c-ares,
# snappy, lz4, zstd, OpenSSL, SASL, curl) come in with them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      /tmp/debs/librdkafka1_2.8.0-1~bpo12+1_amd64.deb \
      librocksdb7.8 \
      libgrpc++1.51 \
      libprotobuf32 \
      libyaml-cpp0.7 \
      libprometheus-cpp-core1.0 \
      libprometheus-cpp-pull1.0 \
      libgflags2.2 \
      libxml2 \
      libcpp-httplib0.11 \
      libsodium23 \
      libjemalloc2 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/debs

# A fixed, non-root identity; the Kubernetes manifests run as the same ids
# (runAsUser/runAsGroup/fsGroup 10001).
RUN groupadd --system --gid 10001 boxwatch \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/boxwatch \
      --no-create-home --shell /usr/sbin/nologin boxwatch \
 && mkdir -p /var/lib/boxwatch/state /var/lib/boxwatch/hub /etc/boxwatch \
 && chown -R boxwatch:boxwatch /var/lib/boxwatch

COPY --from=builder /src/build/release/app/boxwatch /usr/local/bin/boxwatch
# Fails the build if any shared library of the binary is missing here.
RUN ! ldd /usr/local/bin/boxwatch | grep -F "not found" \
 && /usr/local/bin/boxwatch --version

USER 10001:10001
WORKDIR /var/lib/boxwatch
VOLUME ["/var/lib/boxwatch"]
# 7443: dispatcher gRPC; 8080: hub HTTP; 9464: /metrics, /healthz, /readyz.
EXPOSE 7443 8080 9464
ENTRYPOINT ["/usr/local/bin/boxwatch"]
CMD ["--help"]
