#!/usr/bin/env bash
# Benchmarks for docs/performance.md: medians from hyperfine, peak RSS from GNU time.
#   bench/run.sh            build release, run everything, print markdown tables
# Needs: hyperfine and time (Debian packages), python3, a release build (made here).
# Test data (two 1 GiB files, a 100 MB tree) is generated in a temp dir and removed.
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

# Masking throughput: `exec --mask -- cat FILE` (stdout not a terminal: the pipe path)
# against plain `cat FILE`, all to /dev/null, for 1 GiB of random base64 text (100-char
# lines: the worst case, secrets are made of the same characters) and 1 GiB of log lines.
# `cat FILE | cat` is what any filter in a shell pipeline costs (64 KiB pipe).
gib=$((1 << 30))
head -c $((gib * 3 / 4 + 1024 * 1024)) /dev/urandom | base64 -w 100 > "$work/b64.txt"
truncate -s $gib "$work/b64.txt"
(yes 'INFO 2026-11-23T08:00:00Z handled request path=/api/v1/items?page=2 status=200 bytes=5120 duration_ms=12' || true) \
  | head -c $gib > "$work/log.txt"
# | command | median ms | GB/s |
throughput() {
  local bytes=$1; shift
  hyperfine -N -i --warmup 2 --min-runs 10 --export-json "$json" "$@" >/dev/null 2>&1
  python3 - "$json" "$work" "$bytes" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    command = r["command"].replace(sys.argv[2] + "/", "").split("target/release/")[-1]
    print(f"| `{command}` | {r['median'] * 1000:.0f} | {int(sys.argv[3]) / r['median'] / 1e9:.2f} |")
PY
}
echo
echo "| masking 1 GiB (10 credentials) | median (ms) | GB/s |"
echo "| --- | ---: | ---: |"
for data in b64.txt log.txt; do
  throughput $gib "cat $work/$data" "sh -c 'cat $work/$data | cat'" \
    "$bin --store $small exec --mask -- cat $work/$data"
done
rm -f "$work/b64.txt" "$work/log.txt"

# scan over a 100 MB tree: 2,000 files of 50 kB of base64 text in 200 directories, one leak.
mkdir "$work/tree"
head -c $((75 * 1024 * 1024)) /dev/urandom | base64 -w 100 | (cd "$work/tree" && split -b 50000 -a 4 - f.)
(cd "$work/tree" && i=0 && for f in f.*; do d=d$((i % 100))/sub$((i % 2)); mkdir -p "$d"; mv "$f" "$d/$f.txt"; i=$((i + 1)); done)
"$bin" --store "$small" get bench-key-7 > "$work/tree/d42/sub0/leak.txt"
tree_bytes=$(du -sb "$work/tree" | cut -f1)
echo
echo "| scan ($((tree_bytes / 1000000)) MB, $(find "$work/tree" -type f | wc -l) files, 10 credentials) | median (ms) | GB/s |"
echo "| --- | ---: | ---: |"
throughput "$tree_bytes" "$bin --store $small scan $work/tree" "grep -rlF no-such-string-anywhere $work/tree"
