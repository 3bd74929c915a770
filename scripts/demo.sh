#!/usr/bin/env bash
# The quick start: installs what is missing, builds Release, starts histguardd on its embedded
# defaults (gRPC :50051, metrics :9650, data under ./var/histguard) and streams simulated
# detector histograms with injected anomalies through the client, printing verdicts as they come.
# Ctrl-C stops both cleanly and prints the summary.
#
# Environment: DEMO_MONITORS (8), DEMO_RATE histograms/s (200), DEMO_COUNT lumisections per
# monitor (0 = until Ctrl-C), DEMO_WARMUP normal lumisections first (120), DEMO_GRPC /
# DEMO_METRICS listen addresses. The run number is the start time, so each demo is a new run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
GENERATOR=()
command -v ninja >/dev/null 2>&1 && [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && GENERATOR=(-G Ninja)
cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-2}" --target histguardd histguard

GRPC=${DEMO_GRPC:-127.0.0.1:50051}
METRICS=${DEMO_METRICS:-127.0.0.1:9650}
mkdir -p var/histguard
"$BUILD_DIR/server/histguardd" --listen "$GRPC" --metrics-listen "$METRICS" \
  --data-dir ./var/histguard 2> var/histguardd.log &
DAEMON=$!
stop_daemon() {
  if kill -0 "$DAEMON" 2>/dev/null; then
    kill -TERM "$DAEMON" 2>/dev/null || true
    wait "$DAEMON" 2>/dev/null || true
    echo "demo: histguardd stopped (log in var/histguardd.log)"
  fi
}
trap stop_daemon EXIT
trap 'echo; echo "demo: stopping"' INT TERM

for _ in $(seq 1 100); do
  "$BUILD_DIR/client/histguard" health -a "$GRPC" --timeout 0.5 >/dev/null 2>&1 && break
  kill -0 "$DAEMON" 2>/dev/null || { echo "demo: histguardd did not start:"; cat var/histguardd.log; exit 1; }
  sleep 0.2
done
echo "demo: histguardd serving gRPC on $GRPC, metrics on http://$METRICS/metrics"
echo "demo: the first ${DEMO_WARMUP:-120} lumisections per monitor are normal (models train after 100);"
echo "demo: then 5% of histograms carry an injected anomaly. Verdicts of anomalies and flags follow."
RUN=$(date +%s)
# The client handles Ctrl-C itself: it stops sending, drains the verdicts and prints the summary.
"$BUILD_DIR/client/histguard" simulate -a "$GRPC" --monitors "${DEMO_MONITORS:-8}" \
  --rate "${DEMO_RATE:-200}" --count "${DEMO_COUNT:-0}" --warmup "${DEMO_WARMUP:-120}" \
  --anomaly random --anomaly-fraction 0.05 --run "$RUN" || true
# Run control: the run is over, so the silence that follows raises no HistguardDaqSilent.
"$BUILD_DIR/client/histguard" run end "$RUN" -a "$GRPC" >/dev/null 2>&1 || true
