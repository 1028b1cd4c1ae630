#!/usr/bin/env bash
# Benchmark for docs/performance.md: what the broker (exec --broker) costs.
#   bench/broker.sh         build release, print the figures
# 1. Added latency per request: 1,000 small GETs on one keep-alive connection, direct to a
#    plain-HTTP upstream on loopback vs. through the broker (p50, p99).
# 2. Streaming throughput of one 1 GiB response through the broker (curl to /dev/null),
#    and the same direct, with the scrubber searching every byte: from a plain-HTTP and
#    from an HTTPS upstream (sendfile and 1 MiB SSL_writes, bench/broker_upstream.py),
#    with the broker's CPU time per GiB beside each figure.
# 3. Peak RSS of the agentcred process (broker included) with 100 concurrent 16 MiB
#    streams, from /proc/PID/status VmHWM, next to its peak for the same exec without them.
# Needs: python3, curl, openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
# AGENTCRED_BIN: a release binary built before (skips the build).
bin=${AGENTCRED_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=$PWD/target/release/agentcred
fi
work=$(mktemp -d)
upstream_pid=
trap '[ -n "$upstream_pid" ] && kill "$upstream_pid"; rm -rf "$work"' EXIT
export HOME=$work/home CI=true AGENTCRED_STORE=$work/store
unset AGENTCRED_IDENTITY AGENTCRED_IDENTITY_FILE AGENTCRED_PASSPHRASE SSL_CERT_FILE
mkdir -m 700 "$HOME"
"$bin" init --identity file >/dev/null 2>&1

python3 bench/broker_upstream.py "$work/port" & upstream_pid=$!
while [ ! -s "$work/port" ]; do sleep 0.05; done
port=$(cat "$work/port")
printf 'sk-proj-bench-%s' "$(head -c 24 /dev/urandom | base64 | tr -d '+/=')" |
  "$bin" add openai --env OPENAI_API_KEY --upstream "http://127.0.0.1:$port/v1" \
    --base-url-env OPENAI_BASE_URL 2>/dev/null
export DIRECT_URL=http://127.0.0.1:$port

parts=${BENCH_PARTS:-latency throughput rss}
if [[ " $parts " == *" latency "* ]]; then
echo "## latency (1,000 requests each, interleaved; load average $(cut -d' ' -f1-3 /proc/loadavg))"
"$bin" exec --broker --only openai -- python3 bench/broker_load.py 1000

fi
if [[ " $parts " == *" throughput "* ]]; then
# A second upstream over HTTPS, with a CA of its own that agentcred trusts through
# SSL_CERT_FILE (and curl, direct, through --cacert).
(
  cd "$work"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
    -subj "/CN=bench CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext.cnf
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
    -days 2 -extfile ext.cnf
) >/dev/null 2>&1
python3 bench/broker_upstream.py "$work/tls_port" "$work/server.pem" "$work/server.key" &
tls_pid=$!
trap '[ -n "$upstream_pid" ] && kill "$upstream_pid"; kill "$tls_pid"; rm -rf "$work"' EXIT
while [ ! -s "$work/tls_port" ]; do sleep 0.05; done
tls_port=$(cat "$work/tls_port")
printf 'sk-ant-bench-%s' "$(head -c 24 /dev/urandom | base64 | tr -d '+/=')" |
  "$bin" add openai-tls --env TLS_API_KEY --upstream "https://127.0.0.1:$tls_port/v1" \
    --header 'Authorization: Bearer {}' --base-url-env TLS_BASE_URL 2>/dev/null
export TLS_DIRECT_URL=https://127.0.0.1:$tls_port CA=$work/ca.pem

echo "## throughput (1 GiB per transfer, curl -o /dev/null; load average $(cut -d' ' -f1-3 /proc/loadavg))"
# Each line: curl's download speed, and the CPU time the agentcred process (the broker:
# the program's parent) spent meanwhile, per GiB: a figure that load changes less.
SSL_CERT_FILE=$work/ca.pem "$bin" exec --broker --only openai,openai-tls -- sh -c '
  cpu() { awk "{print \$14 + \$15}" /proc/$PPID/stat; }
  run() {
    before=$(cpu)
    speed=$(curl -sS -o /dev/null --cacert "$CA" -w "%{speed_download}" "$2/big?mib=1024")
    after=$(cpu)
    awk -v what="$1" -v s="$speed" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" \
      "BEGIN { printf \"%-22s %5.2f GB/s   broker CPU %.2f s/GiB\n\", what, s / 1e9, t / hz }"
  }
  for i in 1 2 3; do
    run "http direct" "$DIRECT_URL/v1"
    run "http via broker" "$OPENAI_BASE_URL"
    run "https direct" "$TLS_DIRECT_URL/v1"
    run "https via broker" "$TLS_BASE_URL"
  done'

fi
if [[ " $parts " == *" rss "* ]]; then
echo "## peak RSS of the agentcred process (load average $(cut -d' ' -f1-3 /proc/loadavg))"
"$bin" exec --broker --only openai -- sh -c 'grep VmHWM /proc/$PPID/status | sed "s/^/idle broker: /"'
"$bin" exec --broker --only openai -- sh -c '
  for i in $(seq 1 100); do
    curl -sS -o /dev/null "$OPENAI_BASE_URL/big?mib=16" &
  done
  wait
  grep VmHWM /proc/$PPID/status | sed "s/^/100 streams: /"'
fi
