# syntax=docker/dockerfile:1
# histguard: the DQM anomaly daemon (histguardd) and its CLI (histguard).
#
#   docker build -t histguard:0.1.0 .
#   scripts/make-secrets.sh
#   docker run -p 50051:50051 -p 9650:9650 -v histguard-data:/var/lib/histguard \
#     -v "$PWD/deploy/secrets:/etc/histguard-secrets:ro" histguard:0.1.0
#
# The default command serves TLS with the certificate, key and token file in
# /etc/histguard-secrets (docker compose and the Kubernetes manifests mount them there).
#
# Base images are pinned to dated Debian 12 (bookworm) tags; bump both together.

# ---- build ------------------------------------------------------------------------------------
FROM debian:bookworm-20241111 AS build

WORKDIR /src
# Dependencies first, so the layer is reused while only the sources change.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh \
 && rm -rf /var/lib/apt/lists/*

COPY . .
# Install into a staging root: the runtime stage copies exactly what `cmake --install` installs.
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build -j2 \
 && DESTDIR=/staging cmake --install build \
 && test -x /staging/usr/local/bin/histguardd \
 && test -x /staging/usr/local/bin/histguard \
 && test -f /staging/usr/local/share/histguard/console/jsroot/jsroot.min.js

# ---- runtime ----------------------------------------------------------------------------------
FROM debian:bookworm-20241111-slim AS runtime

# Shared libraries of histguardd/histguard, from Debian 12 (the runtime halves of the -dev
# packages scripts/install-deps.sh installs). libopenblas0-pthread replaces the reference BLAS
# that libtorch would otherwise use (much faster).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      libgrpc++1.51 \
      libprotobuf32 \
      libtorch1.13 \
      libopenblas0-pthread \
      libprometheus-cpp-core1.0 \
      libyaml-cpp0.7 \
      librocksdb7.8 \
      libabsl20220623 \
      libssl3 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 histguard \
 && useradd --uid 10001 --gid 10001 --no-create-home \
      --home-dir /var/lib/histguard --shell /usr/sbin/nologin histguard \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/histguard

COPY --from=build /staging/usr/local/ /usr/local/

# Fail the build, not the first start, when a shared library is missing; and check that
# libtorch picks up OpenBLAS.
RUN ldconfig \
 && ! ldd /usr/local/bin/histguardd /usr/local/bin/histguard | grep -F 'not found' \
 && readlink -f "$(ldconfig -p | awk '/libblas\.so\.3 /{print $NF; exit}')" | grep -q openblas

# One thread per pool (scoring_threads/train_threads): no OpenMP or OpenBLAS threads on top.
ENV OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1

USER 10001:10001
WORKDIR /var/lib/histguard
VOLUME /var/lib/histguard

# 50051: gRPC (Ingest, Control, Health, reflection); 9650: HTTP /metrics, /healthz and the web
# console (/console/, served from /usr/local/share/histguard/console, and its API /api/v1/).
EXPOSE 50051 9650

# The health service needs no token; the connection is TLS, checked against the mounted CA.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["histguard", "health", "--address", "127.0.0.1:50051", \
       "--tls-ca", "/etc/histguard-secrets/ca.pem", "--tls-server-name", "localhost"]

# SIGTERM: health goes NOT_SERVING, in-flight calls finish (drain_timeout_seconds), exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["histguardd", "--data-dir", "/var/lib/histguard"]
CMD ["--listen", "0.0.0.0:50051", "--metrics-listen", "0.0.0.0:9650", \
     "--tls-cert", "/etc/histguard-secrets/tls.crt", "--tls-key", "/etc/histguard-secrets/tls.key", \
     "--token-file", "/etc/histguard-secrets/tokens"]
