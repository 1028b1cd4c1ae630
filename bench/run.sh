#!/usr/bin/env bash
# Benchmarks for docs/performance.md: medians from hyperfine, peak RSS from GNU time.
#   bench/run.sh            build release, run everything, print markdown tables
#   AGENTCRED_BIN=PATH      use this binary (skips the build; e.g. an older release to compare)
#   BENCH_PARTS="scale rss" only these parts (pair, scale, rss, mask, scan; default all)
#   BENCH_BEFORE=PATH       also an older binary in the pair part's rounds (before/after)
#   BENCH_RUNS=N            hyperfine runs per command in the scale part (default 100)
# Needs: hyperfine and time (Debian packages), python3, a release build (made here).
# Test data (stores of 10, 1,000 and 10,000 credentials, two 1 GiB files, a 100 MB tree) is
# generated in a temp dir and removed. The load average is printed with the figures: on a
# shared machine, read the user+sys column (CPU time) before the wall-clock medians.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${AGENTCRED_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=$PWD/target/release/agentcred
fi
parts=${BENCH_PARTS:-pair scale rss mask scan}
runs=${BENCH_RUNS:-100}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME=$work/home CI=true
unset AGENTCRED_IDENTITY AGENTCRED_IDENTITY_FILE AGENTCRED_PASSPHRASE XDG_CONFIG_HOME XDG_DATA_HOME XDG_STATE_HOME
unset AGENTCRED_STORE AGENTCRED_AGENT DBUS_SESSION_BUS_ADDRESS
mkdir -m 700 "$HOME"
small=$work/small k1=$work/k1 big=$work/big

echo "agentcred: $("$bin" --version), $(nproc) CPUs, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$bin" --store "$small" init >/dev/null 2>&1
for i in $(seq 1 10); do echo "BENCH_KEY_$i=value-$i-$(head -c 24 /dev/urandom | base64)"; done \
  | "$bin" --store "$small" import - 2>/dev/null
# The same pairs for the store and for `env`: KEY_i=value-i-<i in 32 digits>.
pairs() { for i in $(seq 1 "$1"); do printf 'KEY_%d=value-%d-%032d\n' "$i" "$i" "$i"; done; }
"$bin" --store "$k1" init >/dev/null 2>&1
pairs 1000 | "$bin" --store "$k1" import - 2>/dev/null
"$bin" --store "$big" init >/dev/null 2>&1
pairs 10000 | "$bin" --store "$big" import - 2>/dev/null
env1k="env $(pairs 1000 | tr '\n' ' ')true"
# One argument holds at most 128 KiB (hyperfine's command line is one): the 10,000 pairs
# go through a script, so that baseline includes one `sh` start (about 0.5 ms).
echo "exec env $(pairs 10000 | tr '\n' ' ')true" > "$work/env10k.sh"
env10k="sh $work/env10k.sh"

json=$work/json
# One markdown row per command: | name | median ms | user+sys ms | (median - baseline) |.
# Arguments: runs, then NAME COMMAND pairs; a NAME starting with '=' is the baseline for the
# rows after it. A COMMAND with a '|' runs its left part before each run (a cold cache).
run() {
  local n=$1; shift
  local args=() baseline=""
  while [ $# -gt 0 ]; do
    local name=$1 cmd=$2; shift 2
    if [[ "$cmd" == *"|"* ]]; then
      args+=(--prepare "${cmd%%|*}" -n "$name" "${cmd#*|}")
    else
      args+=(--prepare true -n "$name" "$cmd")
    fi
  done
  hyperfine -N --warmup 5 --min-runs "$n" --export-json "$json" "${args[@]}" >/dev/null 2>&1
  python3 - "$json" <<'PY'
import json, sys
base = None
for r in json.load(open(sys.argv[1]))["results"]:
    name, median = r["command"], r["median"] * 1000
    cpu = (r["user"] + r["system"]) * 1000
    extra = ""
    if name.startswith("="):
        name, base = name[1:], median
    elif base is not None:
        extra = f"{median - base:+.2f}"
    print(f"| {name} | {median:.2f} | {cpu:.2f} | {extra} |")
PY
}

# The overhead targets, interleaved (bench/pair.c): each round runs `env` and then
# `exec` (then the reverse), so the machine's drift over a run cancels out of the
# per-round differences, where hyperfine's medians of one command then the other moved
# by up to 1 ms between runs on the test VM. Needs a C compiler.
if [[ " $parts " == *" pair "* ]]; then
cc -O2 -o "$work/pair" bench/pair.c
before=${BENCH_BEFORE:-}
pair_rows() {
  local rounds=$1 label=$2 env_cmd=$3 store=$4
  # shellcheck disable=SC2086 # the pairs are words
  "$work/pair" "$rounds" "$label" $env_cmd \
    :: "\`exec -- true\`" "$bin" --store "$store" exec -- true \
    ${before:+:: "\`exec -- true\`, $before" "$before" --store "$store" exec -- true}
}
echo "| interleaved ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)) | median (ms) | median of the round's difference (ms) |"
echo "| --- | ---: | ---: |"
pair_rows 1000 "\`env A=b true\`, 10 credentials" "/usr/bin/env A=b true" "$small"
pair_rows 300 "\`env\` with the 1,000 pairs" "/usr/bin/env $(pairs 1000 | tr '\n' ' ')true" "$k1"
echo
fi

if [[ " $parts " == *" scale "* ]]; then
cold() { echo "rm -f $1/cache/values|"; }
echo "| benchmark | median (ms) | user+sys (ms) | over its baseline (ms) |"
echo "| --- | ---: | ---: | ---: |"
run "$runs" "=\`env A=b true\`" "env A=b true" \
  "\`exec -- true\`, 10 credentials, warm" "$bin --store $small exec -- true" \
  "\`exec -- true\`, 10 credentials, cold" "$(cold "$small")$bin --store $small exec -- true"
run "$runs" "=\`env\` with the 1,000 pairs" "$env1k" \
  "\`exec -- true\`, 1,000 credentials, warm" "$bin --store $k1 exec -- true" \
  "\`exec -- true\`, 1,000 credentials, cold" "$(cold "$k1")$bin --store $k1 exec -- true"
run $((runs / 5 + 5)) "=\`sh -c 'exec env'\` with the 10,000 pairs" "$env10k" \
  "\`exec -- true\`, 10,000 credentials, warm" "$bin --store $big exec -- true" \
  "\`exec -- true\`, 10,000 credentials, cold" "$(cold "$big")$bin --store $big exec -- true"
run "$runs" "\`get key-5000\` of 10,000, warm" "$bin --store $big get key-5000" \
  "\`get key-5000\` of 10,000, cold" "$(cold "$big")$bin --store $big get key-5000" \
  "\`list\` of 10,000" "$bin --store $big list" \
  "\`list --json\` of 10,000" "$bin --store $big list --json"
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
fi

if [[ " $parts " == *" rss "* ]]; then
echo
echo "| peak RSS | KiB |"
echo "| --- | ---: |"
# A command that fails is shown as failed, never with its figure: a refused command (a
# rollback, a missing identity) stops early and would look cheap.
# RSS_EXIT=N: the command is meant to fail with exit code N (an error path).
rss() {
  local label=$1; shift
  local code kib
  read -r code kib < <(/usr/bin/time -f '%x %M' "$@" 2>&1 >/dev/null | tail -1)
  if [ "$code" = "${RSS_EXIT:-0}" ]; then
    echo "| $label | $kib |"
  else
    echo "| $label | failed (exit $code) |"
  fi
}
for store in "$small" "$k1" "$big"; do
  count=$(grep -c '^\[credentials\.' "$store/agentcred.toml")
  rm -f "$store/cache/values"
  rss "\`exec -- true\`, $count credentials, cold" "$bin" --store "$store" exec -- true
  rss "\`exec -- true\`, $count credentials, warm" "$bin" --store "$store" exec -- true
  # `env` prints every value: each is found and masked.
  rss "\`exec --mask -- env\`, $count credentials" "$bin" --store "$store" exec --mask -- env
  rss "\`exec --sandbox -- true\`, $count credentials" "$bin" --store "$store" exec --sandbox -- true
done
rm -f "$big/cache/values"
rss "\`get key-5000\` of 10,000, cold" "$bin" --store "$big" get key-5000
rss "\`get key-5000\` of 10,000, warm" "$bin" --store "$big" get key-5000
rss "\`list\` of 10,000" "$bin" --store "$big" list
rss "\`list --json\` of 10,000" "$bin" --store "$big" list --json
rss "\`due\` of 10,000" "$bin" --store "$big" due --within 1000d
rss "\`show key-5000\` of 10,000" "$bin" --store "$big" show key-5000
rss "\`export\` of 10,000, cold" "$bin" --store "$big" export
rss "\`export\` of 10,000, warm" "$bin" --store "$big" export
rss "\`doctor\` of 10,000" "$bin" --store "$big" doctor
# Every value is looked for (the keyed search, as `exec --mask` of 10,000 makes it).
printf 'nothing stored here\n' >"$work/clean.txt"
rss "\`scan\` of one file for 10,000 values" "$bin" --store "$big" scan "$work/clean.txt"
# Writes that fail after reading the store: a missing name, an agent that exists.
RSS_EXIT=4 rss "\`rename\` of a missing name in 10,000 (fails)" "$bin" --store "$big" rename nothing-here other
"$bin" --store "$big" agent add bench-bot --allow key-5 >/dev/null 2>&1
RSS_EXIT=1 rss "\`agent add\` of an existing agent in 10,000 (fails)" "$bin" --store "$big" agent add bench-bot --allow key-5
# A write last: it changes the store (one description).
rss "\`edit key-5000 --description\` in 10,000" "$bin" --store "$big" edit key-5000 --description bench
rss "\`rotate key-5001 --generate\` in 10,000" "$bin" --store "$big" rotate key-5001 --generate 'echo new'
rss "\`rm key-5002 --yes\` in 10,000" "$bin" --store "$big" rm key-5002 --yes
# A repair after a hand edit (one entry's variable), then a recipient added and removed:
# each rewrites all 10,000 entries, the recipients' changes every value too (~10 s each).
sed -i 's/^env = "KEY_5"$/env = "KEY_5_EDITED"/' "$big/agentcred.toml"
rss "\`doctor --reseal --yes\` after a hand edit in 10,000" "$bin" --store "$big" doctor --reseal --yes
other=age163fyqn5lv92e4fgyz9z0rq7ln5hzw34cfgtwjz5g9sgkzq6e5ujs4rh064
rss "\`recipients add\` in 10,000" "$bin" --store "$big" recipients add "$other"
rss "\`recipients rm --yes\` in 10,000" "$bin" --store "$big" recipients rm "$other" --yes
rss "\`exec -- true\`, 10,000 credentials, after the recipients' changes" "$bin" --store "$big" exec -- true
fi

if [[ " $parts " == *" mask "* ]]; then
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
# Past about a hundred values the forms are looked up by their first bytes (mask/keyed.rs).
echo
echo "| masking 1 GiB (1,000 credentials) | median (ms) | GB/s |"
echo "| --- | ---: | ---: |"
for data in b64.txt log.txt; do
  throughput $gib "$bin --store $k1 exec --mask -- cat $work/$data"
done
rm -f "$work/b64.txt" "$work/log.txt"
fi

if [[ " $parts " == *" scan "* ]]; then

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
fi
