#!/usr/bin/env bash
# promtool check config on deploy/prometheus/prometheus.yml as the compose setup sees it: promtool
# checks that the TLS CA and the token file it names exist, and those are made by
# scripts/make-secrets.sh, never committed. So: a copy of deploy/prometheus with fresh secrets.
#   tests/deploy/promtool_check_config.sh PROMTOOL
set -euo pipefail
promtool=${1:-promtool}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/histguard-promtool.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$root/deploy/prometheus" "$work/prometheus"
"$root/scripts/make-secrets.sh" "$work/prometheus/secrets" >/dev/null
cd "$work/prometheus"
"$promtool" check config prometheus.yml
