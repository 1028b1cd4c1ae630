#!/usr/bin/env bash
# What `exec --sandbox` adds to exec, for docs/performance.md (hyperfine medians).
#   bench/sandbox.sh        build release, print markdown tables
# Needs: hyperfine, python3. Runs as whoever starts it (the sandbox needs no privilege).
# The store is the default one under a temp HOME, so the sandbox walks the usual paths.
# Print `uptime` beside the figures: on a loaded machine they are provisional.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/agentcred
work=$(mktemp -d /var/tmp/agentcred-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export HOME=$work/home CI=true
unset AGENTCRED_IDENTITY AGENTCRED_IDENTITY_FILE AGENTCRED_PASSPHRASE AGENTCRED_STORE \
  XDG_CONFIG_HOME XDG_DATA_HOME XDG_STATE_HOME DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR
mkdir -m 700 "$HOME"
"$bin" init >/dev/null
for i in $(seq 1 10); do echo "BENCH_KEY_$i=value-$i-$(head -c 24 /dev/urandom | base64)"; done \
  | "$bin" import - 2>/dev/null
# A path-named session bus socket: the sandbox then also makes a user and mount namespace.
python3 -c "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$work/bus"

json=$work/json
table() {
  python3 - "$json" "$work" "$bin" "$1" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    command = r["command"].replace(sys.argv[3], "agentcred").replace(sys.argv[2] + "/", "")
    cpu = (r["user"] + r["system"]) * 1000
    print(f"| `{command}`{sys.argv[4]} | {r['median'] * 1000:.2f} | {cpu:.2f} |")
PY
}
uptime
echo "| benchmark (10 credentials) | median (ms) | user+sys (ms) |"
echo "| --- | ---: | ---: |"
bench() {
  hyperfine -N --warmup 5 --min-runs 200 --export-json "$json" \
    "$bin exec -- true" "$bin exec --sandbox -- true" \
    "$bin exec --mask -- true" "$bin exec --mask --sandbox -- true" >/dev/null 2>&1
}
bench
table ""
# A path-named session bus: the sandbox also covers it.
export DBUS_SESSION_BUS_ADDRESS=unix:path=$work/bus
bench
table ", path-named bus"
# Where the cost goes: a sandboxed run is always a child of agentcred, and the sandbox is
# set up by a second start of the agentcred binary (the trampoline). Its start alone
# (`--bad` ends right after start-up) against a small program's, and the trampoline with
# the spec exec passes it (taken from strace), running /usr/bin/true: the difference is
# the set-up itself (namespace, covers, seccomp, Landlock).
hyperfine -N -i --warmup 5 --min-runs 200 --export-json "$json" \
  "/usr/bin/true" "$bin __sandbox-exec --bad" >/dev/null 2>&1
table " (start-up alone)"
if command -v strace >/dev/null; then
  strace -f -qq -s 65536 -e trace=execve -o "$work/trace" "$bin" exec --sandbox -- /usr/bin/true
  spec=$(python3 - "$work/trace" <<'PY'
import re, sys
for line in open(sys.argv[1]):
    if "__sandbox-exec" in line:
        args = re.search(r"\[(.*)\]", line).group(1)
        words = re.findall(r'"((?:[^"\\]|\\.)*)"', args)
        print(" ".join(words[2:words.index("--")]))
        break
PY
)
  # -i: `--bad` exits with a usage error, by design.
  hyperfine -N -i --warmup 5 --min-runs 200 --export-json "$json" \
    "$bin __sandbox-exec --bad" "$bin __sandbox-exec $spec -- /usr/bin/true true" >/dev/null 2>&1
  table " (the trampoline: start-up / set-up and run true)"
fi
