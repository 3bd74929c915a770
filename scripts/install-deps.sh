#!/usr/bin/env bash
# Installs everything histguard needs to build, test and run, from Debian 12's apt only.
# Idempotent: packages already present are left alone. Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # sanitizer builds and fuzzing (scripts/test-sanitizers.sh): clang with its runtimes (libFuzzer)
  clang libclang-rt-14-dev
  # RPC and serialisation
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  # ML core; OpenBLAS replaces the reference BLAS libtorch links by default (10-30x faster)
  libtorch-dev libopenblas0-pthread libopenblas-dev
  # metrics, networking, config, storage
  prometheus-cpp-dev libboost-dev libboost-program-options-dev libcli11-dev nlohmann-json3-dev libyaml-cpp-dev
  librocksdb-dev libabsl-dev
  # TLS and token hashes (OpenSSL); the openssl tool makes test and deployment certificates
  libssl-dev openssl
  # tests: GoogleTest, promtool / prometheus server, curl for scrapes, headless Chromium for the
  # console's browser test
  libgtest-dev libgmock-dev prometheus curl python3 chromium
  # Python client (python/): runtime, stub generation (protoc + grpc_python_plugin from
  # protobuf-compiler-grpc above), install, tests and the optional plots
  python3-grpcio python3-protobuf python3-numpy python3-pip python3-setuptools python3-wheel
  python3-venv python3-pytest python3-matplotlib
)

# The console bundles JSROOT from npm at build time; the deployment checks (Kubernetes schemas,
# Dockerfile lint, dashboards) and the console's browser test run on Node.js. A machine that
# already has node and npm (from any source) keeps them.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
