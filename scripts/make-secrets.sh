#!/usr/bin/env bash
# Makes the credentials a secured histguard needs, for docker compose or a first try:
#   ca.pem, ca.key           a private CA (keep ca.key away from the daemon)
#   tls.crt, tls.key         the daemon's certificate for histguard, localhost and 127.0.0.1
#   tokens                   the daemon's token file (SHA-256 hashes and roles)
#   ingest.token, read.token, operator.token
#                            the bearer tokens themselves, for DAQ sources (--token-file),
#                            Prometheus (credentials_file) and the shift crew's CLI
#
#   scripts/make-secrets.sh [DIR]     (default deploy/secrets; files already there are kept)
#
# For production use your site's CA (or cert-manager on Kubernetes) and tokens made with
# `histguard token`; these files are readable by the containers' users, as a laptop setup needs.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-deploy/secrets}
mkdir -p "$dir"
cd "$dir"
command -v openssl >/dev/null || { echo "make-secrets: openssl is not installed" >&2; exit 1; }

if [ ! -f ca.pem ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj /CN=histguard-ca \
    -keyout ca.key -out ca.pem 2>/dev/null
  chmod 600 ca.key
fi
if [ ! -f tls.crt ]; then
  openssl req -newkey rsa:3072 -nodes -subj /CN=histguard -keyout tls.key -out tls.csr 2>/dev/null
  printf 'subjectAltName=DNS:histguard,DNS:localhost,IP:127.0.0.1\n' >tls.ext
  openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
    -extfile tls.ext -out tls.crt 2>/dev/null
  rm -f tls.csr tls.ext ca.srl
  chmod 644 tls.key tls.crt  # read by the container user (uid 10001)
fi
if [ ! -f tokens ]; then
  : >tokens
  for role in ingest read operator; do
    token=$(openssl rand -hex 32)
    printf '%s\n' "$token" >"$role.token"
    hash=$(printf '%s' "$token" | openssl dgst -sha256 -r | cut -d' ' -f1)
    printf '%s sha256:%s compose-%s\n' "$role" "$hash" "$role" >>tokens
  done
fi
echo "make-secrets: credentials in $(pwd)"
