#!/usr/bin/env bash
# Benchmark for docs/performance.md: what the broker (exec --broker) costs.
#   bench/broker.sh         build release, print the figures
# 1. Added latency per request: 1,000 small GETs on one keep-alive connection, direct to a
#    plain-HTTP upstream on loopback vs. through the broker (p50, p99).
# 2. Streaming throughput of one 1 GiB response through the broker (curl to /dev/null),
#    and the same direct, with the scrubber searching every byte.
# 3. Peak RSS of the agentcred process (broker included) with 100 concurrent 16 MiB
#    streams, from /proc/PID/status VmHWM, next to its peak for the same exec without them.
# Needs: python3, curl.
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
echo "## latency (1,000 requests each, interleaved)"
"$bin" exec --broker -- python3 bench/broker_load.py 1000

fi
if [[ " $parts " == *" throughput "* ]]; then
echo "## throughput (1 GiB, curl -o /dev/null)"
"$bin" exec --broker -- sh -c '
  for i in 1 2; do
    d=$(curl -sS -o /dev/null -w "%{speed_download}" "$DIRECT_URL/v1/big?mib=1024")
    b=$(curl -sS -o /dev/null -w "%{speed_download}" "$OPENAI_BASE_URL/big?mib=1024")
    echo "direct $(echo "$d" | awk "{printf \"%.2f\", \$1/1e9}") GB/s, broker $(echo "$b" | awk "{printf \"%.2f\", \$1/1e9}") GB/s"
  done'

fi
if [[ " $parts " == *" rss "* ]]; then
echo "## peak RSS of the agentcred process"
"$bin" exec --broker -- sh -c 'grep VmHWM /proc/$PPID/status | sed "s/^/idle broker: /"'
"$bin" exec --broker -- sh -c '
  for i in $(seq 1 100); do
    curl -sS -o /dev/null "$OPENAI_BASE_URL/big?mib=16" &
  done
  wait
  grep VmHWM /proc/$PPID/status | sed "s/^/100 streams: /"'
fi
