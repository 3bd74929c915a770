#!/usr/bin/env bash
# End to end: the shipped alert rules, evaluated by a real Prometheus scraping a real histguardd.
#
#   tests/deploy/prometheus_alert_e2e.sh HISTGUARDD HISTGUARD
#
# Starts histguardd on loopback ports chosen by the kernel with a fresh data dir, as a control room
# runs it: TLS on both ports (a CA and certificates made here with openssl) and a token file with
# an ingest token (for the simulator) and a read token (for Prometheus). Prometheus scrapes over
# HTTPS with its token (scrape and evaluation every 1 s) with a copy of deploy/prometheus/rules/histguard.rules.yml whose
# `for:` durations are shortened to 3 s and HistguardMonitorBad's window from 2 m to 10 s (same
# expressions otherwise). Streams normal histograms until the models are trained and checks that
# HistguardMonitorBad is not firing; then sends a single lumisection with a hot bin to one
# monitor and waits until HistguardMonitorBad fires for it. The run then ends on that BAD
# lumisection (`histguard run end`): the alert must stop, and the monitor's significance leave
# /metrics once stale. Finally checks that SIGTERM drains and exits 0. Everything started here is
# stopped on exit.
#
# Environment:
#   PROMETHEUS   Prometheus server binary (default /usr/bin/prometheus, Debian's `prometheus`)
#   SCRAPE_OUT   if set, a /metrics scrape taken after both phases is written there
#                (for `node tests/deploy/check_dashboards.js SCRAPE_OUT`)
#   KEEP_WORK    if set to 1, the temporary folder (logs, configs) is kept
# Needs: curl, python3, openssl.
set -euo pipefail

usage() { echo "usage: $0 HISTGUARDD HISTGUARD" >&2; exit 2; }
[ $# -eq 2 ] || usage
HISTGUARDD=$1
HISTGUARD=$2
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RULES=$ROOT/deploy/prometheus/rules/histguard.rules.yml
FOR=3s
BAD_WINDOW=10s  # HistguardMonitorBad's increase() window in the copy (2m in the shipped rules)
STALE=20        # --metrics-stale-seconds
MONITORS=4

log() { echo "prometheus_alert_e2e: $*"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/histguard-alert-e2e.XXXXXX")
daemon_pid=""
prom_pid=""
grpc_addr=""
metrics_addr=""
prom_url=""

diagnostics() {
  {
    echo "---- histguardd stdout (tail)"; tail -n 20 "$work/daemon.out" 2>/dev/null || true
    echo "---- histguardd stderr (tail)"; tail -n 40 "$work/daemon.err" 2>/dev/null || true
    echo "---- prometheus log (tail)"; tail -n 20 "$work/prometheus.log" 2>/dev/null || true
    if [ -n "$metrics_addr" ]; then
      echo "---- histguard_anomaly_significance / histguard_model_version"
      curl -fsS --max-time 5 --cacert "$work/ca.pem" -H "Authorization: Bearer ${read_token:-}" \
        "https://$metrics_addr/metrics" 2>/dev/null \
        | grep -E '^histguard_(anomaly_significance|model_version)\{' || true
    fi
    if [ -n "$prom_url" ]; then
      echo "---- Prometheus /api/v1/alerts"; curl -fsS --max-time 5 "$prom_url/api/v1/alerts" 2>/dev/null || true
      echo
    fi
  } >&2
}

fail() {
  echo "prometheus_alert_e2e: FAIL: $*" >&2
  diagnostics
  exit 1
}

stop() { # PID: TERM, then KILL if it has not exited after 15 s
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  stop "$prom_pid"
  stop "$daemon_pid"
  if [ "${KEEP_WORK:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS WHAT COMMAND...: runs COMMAND every 0.2 s until it succeeds, at most SECONDS.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${seconds}s waiting for $what"
    sleep 0.2
  done
}

[ -z "${SCRAPE_OUT:-}" ] || rm -f "$SCRAPE_OUT" # never leave an older run's scrape behind

# ---- prerequisites
for tool in curl python3 openssl; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done
[ -x "$HISTGUARDD" ] || fail "histguardd not executable: $HISTGUARDD"
[ -x "$HISTGUARD" ] || fail "histguard not executable: $HISTGUARD"
[ -x "$PROMETHEUS" ] || fail "prometheus not executable: $PROMETHEUS (apt-get install prometheus)"
[ -f "$RULES" ] || fail "rules file missing: $RULES"

# ---- credentials: a CA, the daemon's certificate, an ingest and a read token
(
  cd "$work"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=histguard-test-ca \
    -keyout ca.key -out ca.pem
  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr
  echo "subjectAltName=DNS:localhost,IP:127.0.0.1" >san.cnf
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile san.cnf -out server.pem
) >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; fail "could not make test certificates"; }
: >"$work/tokens"
for role in ingest read; do
  out=$("$HISTGUARD" token --role "$role" --name "e2e-$role") || fail "histguard token failed"
  sed -n 's/^token: //p' <<<"$out" >"$work/$role.token"
  sed -n 's/^token-file line: //p' <<<"$out" >>"$work/tokens"
done
read_token=$(cat "$work/read.token")
TLS_CLIENT=(--tls-ca "$work/ca.pem" --token-file "$work/ingest.token")

# ---- histguardd on ports the kernel picks; its first stdout line says which
mkdir -p "$work/data"
: >"$work/daemon.out"
"$HISTGUARDD" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir "$work/data" \
  --tls-cert "$work/server.pem" --tls-key "$work/server.key" --token-file "$work/tokens" \
  --min-train-samples 100 --metrics-stale-seconds "$STALE" >"$work/daemon.out" 2>"$work/daemon.err" &
daemon_pid=$!

daemon_listening() {
  kill -0 "$daemon_pid" 2>/dev/null || fail "histguardd exited during start-up"
  [ "$(wc -l <"$work/daemon.out")" -ge 1 ] # a whole first line
}
wait_for 60 "histguardd's listening line" daemon_listening

read -r grpc_addr metrics_addr < <(head -n 1 "$work/daemon.out" | python3 -c '
import json, sys
line = sys.stdin.readline()
try:
    ev = json.loads(line)
except ValueError:
    sys.exit("first stdout line is not JSON: " + line.strip())
if ev.get("event") != "listening" or not ev.get("grpc") or not ev.get("metrics"):
    sys.exit("unexpected first stdout line: " + line.strip())
print(ev["grpc"], ev["metrics"])
') || fail "could not read the listening line"
log "histguardd pid $daemon_pid: gRPC $grpc_addr, metrics $metrics_addr"

# scrape: /metrics as Prometheus gets it (HTTPS, the read token).
scrape() {
  curl -fsS --max-time 5 --cacert "$work/ca.pem" -H "Authorization: Bearer $read_token" \
    "https://$metrics_addr/metrics"
}
scrape >/dev/null || fail "GET https://$metrics_addr/metrics with the read token failed"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$work/ca.pem" "https://$metrics_addr/metrics")
[ "$code" = 401 ] || fail "GET /metrics without a token answered $code, expected 401"

# ---- Prometheus with the shipped rules, `for:` and HistguardMonitorBad's window shortened
python3 - "$RULES" "$work/histguard.rules.yml" "$FOR" "$BAD_WINDOW" <<'PY' || fail "could not shorten the rules' durations"
import re, sys
src, dst, for_, window = sys.argv[1:]
text = open(src).read()
short, n_for = re.subn(r"(?m)^(\s*)for:\s.*$", r"\g<1>for: " + for_, text)
bad = 'increase(histguard_monitor_verdicts_total{quality="bad"}[2m])'
if n_for == 0 or text.count(bad) != 1:
    sys.exit("expected for: durations and HistguardMonitorBad's window " + bad)
short = short.replace(bad, bad.replace("[2m]", "[" + window + "]"))
open(dst, "w").write(short)
PY

prom_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
prom_url="http://127.0.0.1:$prom_port"
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $work/histguard.rules.yml
scrape_configs:
  - job_name: histguard
    scheme: https
    tls_config:
      ca_file: $work/ca.pem
    authorization:
      credentials_file: $work/read.token
    static_configs:
      - targets: ["$metrics_addr"]
EOF

"$PROMETHEUS" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
prom_pid=$!

prom_ready() {
  kill -0 "$prom_pid" 2>/dev/null || fail "prometheus exited during start-up"
  curl -fsS --max-time 2 "$prom_url/-/ready" >/dev/null 2>&1
}
wait_for 60 "Prometheus to be ready" prom_ready
log "prometheus pid $prom_pid on $prom_url"

# prom_query EXPR: prints the instant query's result values, one per line ("" when empty).
prom_query() {
  curl -fsS --max-time 5 -G "$prom_url/api/v1/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["data"]["result"]:
    print(r["value"][1])'
}
target_up() { [ "$(prom_query 'up{job="histguard"}' 2>/dev/null)" = "1" ]; }
wait_for 60 "Prometheus to scrape histguardd" target_up

# bad_alerts STATE: monitors for which HistguardMonitorBad is in STATE (firing|pending), one per line.
bad_alerts() {
  curl -fsS --max-time 5 "$prom_url/api/v1/alerts" | python3 -c '
import json, sys
state = sys.argv[1]
for a in json.load(sys.stdin)["data"]["alerts"]:
    if a["labels"].get("alertname") == "HistguardMonitorBad" and a["state"] == state:
        print(a["labels"].get("monitor", ""))' "$1"
}

# ---- phase 1: normal histograms until every monitor has a model
log "phase 1: $MONITORS monitors x 150 normal histograms (no anomalies)"
"$HISTGUARD" simulate --address "$grpc_addr" "${TLS_CLIENT[@]}" --monitors "$MONITORS" --count 150 --rate 0 \
  --anomaly none --run 1 --first-lumisection 1 >"$work/simulate-normal.log" 2>&1 || { cat "$work/simulate-normal.log" >&2; fail "histguard simulate (normal) failed"; }

# Monitor names as the daemon reports them (whatever names simulate gives them).
monitors() {
  scrape | python3 -c '
import re, sys
names = sorted({m.group(1) for m in re.finditer(r"^histguard_model_version\{[^}]*monitor=\"([^\"]+)\"", sys.stdin.read(), re.M)})
print("\n".join(names))'
}
all_trained() {
  scrape | python3 -c '
import re, sys
text = sys.stdin.read()
versions = {m.group(1): float(m.group(2)) for m in re.finditer(r"^histguard_model_version\{[^}]*monitor=\"([^\"]+)\"[^}]*\} (\S+)", text, re.M)}
sys.exit(0 if len(versions) >= int(sys.argv[1]) and all(v > 0 for v in versions.values()) else 1)' "$MONITORS"
}
wait_for 180 "all $MONITORS monitors to have a trained model (histguard_model_version > 0)" all_trained
mapfile -t names < <(monitors)
[ "${#names[@]}" -ge "$MONITORS" ] || fail "expected $MONITORS monitors in /metrics, found ${#names[@]}: ${names[*]}"
target=${HISTGUARD_E2E_MONITOR:-${names[0]}}
log "models trained for: ${names[*]}"

# The alert must stay quiet on normal data for longer than its `for:`, as seen by Prometheus:
# wait for a rule evaluation that happens after the trained models were scraped plus `for:` + 2 s.
prom_sees_models() { [ -n "$(prom_query 'min(histguard_model_version{job="histguard"}) > 0' 2>/dev/null)" ]; }
wait_for 60 "Prometheus to scrape the trained models" prom_sees_models
settled_after=$(python3 -c 'import time; print(time.time() + 5)')
evaluated_since() {
  curl -fsS --max-time 5 "$prom_url/api/v1/rules" | python3 -c '
import datetime, json, re, sys
after = float(sys.argv[1])
for g in json.load(sys.stdin)["data"]["groups"]:
    if g["name"] == "histguard.quality":
        # RFC 3339 with up to nanoseconds, e.g. 2024-11-11T10:00:01.123456789Z
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", g.get("lastEvaluation", ""))
        if not m:
            sys.exit(1)
        zone = "+00:00" if m.group(3) == "Z" else m.group(3)
        t = datetime.datetime.fromisoformat(m.group(1) + zone).timestamp() + float("0" + (m.group(2) or ""))
        sys.exit(0 if t >= after else 1)
sys.exit(1)' "$settled_after"
}
wait_for 30 "Prometheus to evaluate the rules on the trained models for ${FOR} + 2 s" evaluated_since
firing=$(bad_alerts firing) || fail "could not read Prometheus alerts"
[ -z "$firing" ] || fail "HistguardMonitorBad is firing on normal data for: $(echo "$firing" | tr '\n' ' ')"
log "phase 1 ok: HistguardMonitorBad not firing on normal data"

# ---- phase 2: one BAD lumisection in one monitor
log "phase 2: a single lumisection with a hot bin in $target"
# Same run, a later lumisection (a repeated (monitor, run, lumisection) is answered from before),
# one histogram per monitor, the anomaly in the target's only.
"$HISTGUARD" simulate --address "$grpc_addr" "${TLS_CLIENT[@]}" --monitors "$MONITORS" --count 1 --rate 0 \
  --anomaly hot_bin --anomaly-monitor "$target" --anomaly-fraction 1 \
  --run 1 --first-lumisection 151 --warmup 0 >"$work/simulate-anomaly.log" 2>&1 || { cat "$work/simulate-anomaly.log" >&2; fail "histguard simulate (anomaly) failed"; }
bad_count() { # the target's BAD counter as the daemon exports it
  scrape | python3 -c '
import re, sys
for m in re.finditer(r"^histguard_monitor_verdicts_total\{([^}]*)\} (\S+)$", sys.stdin.read(), re.M):
    if "monitor=\"%s\"" % sys.argv[1] in m.group(1) and "quality=\"bad\"" in m.group(1):
        print(int(float(m.group(2))))' "$target"
}
[ "$(bad_count)" = 1 ] || { cat "$work/simulate-anomaly.log" >&2; fail "the hot-bin lumisection of $target was not counted as one BAD verdict (counter: $(bad_count))"; }

started=$SECONDS
fired_for_target() { bad_alerts firing 2>/dev/null | grep -qxF "$target"; }
wait_for 30 "HistguardMonitorBad to fire for $target on a single BAD lumisection" fired_for_target
others=$(bad_alerts firing | grep -vxF "$target" || true)
[ -z "$others" ] || fail "HistguardMonitorBad also fires for normal monitors: $(echo "$others" | tr '\n' ' ')"
log "phase 2 ok: HistguardMonitorBad firing for $target $((SECONDS - started)) s after one BAD lumisection, for no other monitor"

scrape >"$work/metrics.txt" || fail "could not scrape https://$metrics_addr/metrics"
if [ -n "${SCRAPE_OUT:-}" ]; then
  cp "$work/metrics.txt" "$SCRAPE_OUT" || fail "could not write the scrape to $SCRAPE_OUT"
  log "wrote a /metrics scrape to $SCRAPE_OUT"
fi

# The dashboards' queries against this Prometheus, now that it holds real data.
if command -v node >/dev/null; then
  node "$HERE/check_dashboards.js" --prometheus "$prom_url" "$work/metrics.txt" >"$work/dashboards.tap" 2>&1 \
    || { cat "$work/dashboards.tap" >&2; fail "dashboard queries or metric names do not match the live daemon"; }
  log "dashboard queries run on the live data; their metric names are all exported"
else
  log "node not installed: dashboard queries not checked on the live data"
fi

# ---- phase 3: the run ends on that BAD lumisection
log "phase 3: run 1 ends on the BAD lumisection"
run_open() { scrape | grep -qE "^histguard_run_open $1\$"; }
run_open 1 || fail "histguard_run_open is not 1 while run 1's histograms arrive"
"$HISTGUARD" run end 1 --address "$grpc_addr" "${TLS_CLIENT[@]}" >"$work/run-end.log" 2>&1 \
  || { cat "$work/run-end.log" >&2; fail "histguard run end 1 failed"; }
run_open 0 || fail "histguard_run_open is not 0 after histguard run end 1"
started=$SECONDS
bad_resolved() {
  local firing
  firing=$(bad_alerts firing) && ! grep -qxF "$target" <<<"$firing"
}
wait_for 60 "HistguardMonitorBad to stop firing for $target after its run ended on BAD" bad_resolved
log "phase 3 ok: HistguardMonitorBad stopped $((SECONDS - started)) s after the run ended"
significance_gone() {
  local text
  text=$(scrape) && ! grep -F "histguard_anomaly_significance{" <<<"$text" | grep -qF "monitor=\"$target\""
}
wait_for $((STALE + 20)) "$target's significance to leave /metrics ${STALE} s after its last verdict" significance_gone
log "phase 3 ok: a stale significance is no longer exported"

# ---- graceful stop: SIGTERM drains (drain timeout 10 s by default) and exits 0
kill -TERM "$daemon_pid"
deadline=$((SECONDS + 25))
while kill -0 "$daemon_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
kill -0 "$daemon_pid" 2>/dev/null && fail "histguardd still running 25 s after SIGTERM"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=""
[ "$rc" -eq 0 ] || fail "histguardd exited with status $rc after SIGTERM (expected 0)"
log "histguardd exited 0 after SIGTERM"

log "PASS: over TLS with tokens, HistguardMonitorBad quiet on normal data, firing for $target on a hot bin"
