#!/usr/bin/env bash
# Benchmark for docs/performance.md: `exec` with the identity in the OS keychain vs. in a
# file (hyperfine medians). Runs itself on a private D-Bus session bus with gnome-keyring
# unlocked in a temp HOME (tests/support/keyring-session), so it needs no desktop.
#   bench/keychain.sh       build release, print a markdown table
# Needs: hyperfine, gnome-keyring, dbus, libsecret-tools (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${AGENTCRED_BENCH_WORK:-}" ]; then
  cargo build --release --quiet
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -m 700 "$work/keyring-home"
  HOME=$work/keyring-home AGENTCRED_BENCH_WORK=$work tests/support/keyring-session unlocked bash "$0"
  exit
fi

work=$AGENTCRED_BENCH_WORK
bin=$PWD/target/release/agentcred
export CI=true
unset AGENTCRED_IDENTITY AGENTCRED_IDENTITY_FILE AGENTCRED_PASSPHRASE AGENTCRED_STORE
unset XDG_CONFIG_HOME XDG_DATA_HOME XDG_STATE_HOME XDG_RUNTIME_DIR
mkdir -m 700 "$work/file-home"
ten() { for i in $(seq 1 10); do echo "BENCH_KEY_$i=value-$i-$(head -c 24 /dev/urandom | base64)"; done; }

# First the file identity, measured while the keychain holds no agentcred identity (a file
# user on a desktop: every command asks the keychain first and finds nothing).
HOME=$work/file-home "$bin" --store "$work/file" init --identity file >/dev/null
ten | HOME=$work/file-home "$bin" --store "$work/file" import - 2>/dev/null

json=$work/json
# One markdown row: | what | median ms |
run() {
  local what=$1
  shift
  hyperfine -N --warmup 5 --min-runs 50 --export-json "$json" "$@" >"$work/hyperfine.log" 2>&1 || { cat "$work/hyperfine.log" >&2; exit 1; }
  python3 - "$json" "$what" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"| {sys.argv[2]} | {r['median'] * 1000:.2f} |")
PY
}

echo "| \`agentcred exec -- true\`, 10 credentials | median (ms) |"
echo "| --- | ---: |"
DBUS_SESSION_BUS_ADDRESS= HOME=$work/file-home \
  run "identity in a file, no D-Bus (headless)" "$bin --store $work/file exec -- true"
HOME=$work/file-home \
  run "identity in a file, Secret Service on the bus (asked first, finds nothing)" "$bin --store $work/file exec -- true"

# Now the keychain identity (the HOME of the keyring), with age values and keychain values.
"$bin" --store "$work/keychain" init --identity keychain >/dev/null
ten | "$bin" --store "$work/keychain" import - 2>/dev/null
"$bin" --store "$work/keychain-values" init >/dev/null
for i in $(seq 1 10); do
  head -c 24 /dev/urandom | base64 | "$bin" --store "$work/keychain-values" add "key-$i" --backend keychain 2>/dev/null
done

run "identity in the keychain, age values" "$bin --store $work/keychain exec -- true"
run "identity and the 10 values in the keychain" "$bin --store $work/keychain-values exec -- true"
