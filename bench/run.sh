#!/usr/bin/env bash
# Benchmarks for docs/performance.md: medians from hyperfine, peak RSS from GNU time.
#   bench/run.sh            build release, run everything, print a markdown table
# Needs: hyperfine and time (Debian packages), a release build (made here).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/agentcred
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME=$work/home CI=true
unset AGENTCRED_IDENTITY AGENTCRED_IDENTITY_FILE AGENTCRED_PASSPHRASE XDG_CONFIG_HOME XDG_DATA_HOME XDG_STATE_HOME
mkdir -m 700 "$HOME"
small=$work/small big=$work/big

"$bin" --store "$small" init >/dev/null
for i in $(seq 1 10); do echo "BENCH_KEY_$i=value-$i-$(head -c 24 /dev/urandom | base64)"; done \
  | "$bin" --store "$small" import - 2>/dev/null
"$bin" --store "$big" init >/dev/null
for i in $(seq 1 10000); do echo "KEY_$i=value-$i-$(printf %032d "$i")"; done \
  | "$bin" --store "$big" import - 2>/dev/null

json=$work/json
# One markdown row per command: | command | median ms |
run() {
  hyperfine -N --warmup 5 --min-runs "$1" --export-json "$json" "${@:2}" >/dev/null 2>&1
  python3 - "$json" "$work" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    command = r["command"].replace(sys.argv[2] + "/", "").replace("/", "/").split("target/release/")[-1]
    print(f"| `{command}` | {r['median'] * 1000:.2f} |")
PY
}

echo "| benchmark | median (ms) |"
echo "| --- | ---: |"
run 200 "env A=b true" "$bin --store $small exec -- true"
run 100 "$bin --store $big get key-5000"
run 30 "$bin --store $big list"

echo
echo "| peak RSS | KiB |"
echo "| --- | ---: |"
for cmd in "exec -- true" "get key-5000" "list" "list --json"; do
  store=$big; [ "$cmd" = "exec -- true" ] && store=$small
  kib=$(/usr/bin/time -f %M "$bin" --store "$store" $cmd 2>&1 >/dev/null | tail -1)
  echo "| \`$cmd\` ($( [ "$store" = "$big" ] && echo 10,000 || echo 10) credentials) | $kib |"
done
