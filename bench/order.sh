#!/usr/bin/env bash
# Writes bench/hot-functions.txt: the functions the common commands run, in the order they
# first run, for the linker to place side by side (build.rs passes the file to lld as
# `--symbol-ordering-file`). The kernel maps a binary's code 64 kB around each page it
# faults in, so code that runs scattered over the 9 MB of text costs its whole span in
# peak RSS; placed together it costs its own size. See docs/performance.md, "fifth pass".
#
#   bench/order.sh          build an unstripped release, run the commands, write the file
#
# Names carry hashes that change when a dependency or the compiler changes (and the
# `.llvm.N` suffixes of some, when their module changes): names not found are skipped, so
# a stale file costs memory, never correctness. Run this again after such changes;
# it prints how much of the file the current build still finds.
# Needs: valgrind (callgrind), binutils (nm), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/hot-functions.txt
# The same compiler flags as the release build (so the same symbol names), unstripped.
cargo rustc --release --quiet --bin agentcred -- -C strip=none
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=$work/agentcred
cp target/release/agentcred "$bin"
export HOME=$work/home CI=true
unset AGENTCRED_IDENTITY AGENTCRED_IDENTITY_FILE AGENTCRED_PASSPHRASE XDG_CONFIG_HOME XDG_DATA_HOME XDG_STATE_HOME
unset AGENTCRED_STORE AGENTCRED_AGENT DBUS_SESSION_BUS_ADDRESS
mkdir -m 700 "$HOME"
pairs() { for i in $(seq 1 "$1"); do printf 'KEY_%d=value-%d-%032d\n' "$i" "$i" "$i"; done; }
for n in 10 10000; do
  "$bin" --store "$work/s$n" init >/dev/null 2>&1
  pairs "$n" | "$bin" --store "$work/s$n" import - 2>/dev/null
done
printf 'nothing stored here\n' >"$work/clean.txt"
i=0
# e: `exec`, laid out first; a: the commands bench/run.sh measures; b: the others, whose
# own code goes after a's.
phase=e
run() {
  i=$((i + 1))
  # `exec` becomes the program (execve): without a dump before it, its profile is lost.
  timeout 600 valgrind --tool=callgrind --demangle=no --dump-instr=no --dump-before='exec*' \
    --callgrind-out-file="$work/cg.$phase$(printf %03d $i)" "$bin" "$@" >/dev/null 2>&1 || true
}
# Warm, as measured: one run first makes the value cache, so the profile is the hits'.
AGENTCRED_STORE=$work/s10 "$bin" exec -- /usr/bin/true </dev/null >/dev/null 2>&1
AGENTCRED_STORE=$work/s10 run exec -- /usr/bin/true </dev/null
phase=a
for n in 10 10000; do
  export AGENTCRED_STORE=$work/s$n
  run --version </dev/null
  run get key-5 </dev/null
  run exec -- /usr/bin/true </dev/null
  run list </dev/null
  run list --json </dev/null
  run show key-5 </dev/null
  run due </dev/null
  run export </dev/null
  run audit </dev/null
  run doctor </dev/null
  run edit key-5 --description x </dev/null
  run rotate key-6 --generate 'echo new' </dev/null
  printf 'v' | run add new-key
  run rm new-key </dev/null
  run rename key-7 key-7b </dev/null
  run agent add bot --allow key-5 </dev/null
  run exec --agent bot -- /usr/bin/true </dev/null
  run exec --mask -- /usr/bin/printenv KEY_5 </dev/null
  # valgrind has no Landlock system calls, so this stops at the sandbox's check: what
  # runs up to there (and is resident at exec's peak, while the values are read) is
  # ordered; the supervision after the spawn is not.
  run exec --sandbox -- /usr/bin/true </dev/null
  run get nothing-here </dev/null
  run scan "$work/clean.txt" </dev/null
  # Writes that fail once they have read the store: a missing name, an existing agent.
  run rename nothing-here other </dev/null
  run agent add bot --allow key-5 </dev/null
done
# Less common command lines and error paths, on the small store (their code is the same
# at any size): each maps its own code scattered over the binary unless it is listed.
export AGENTCRED_STORE=$work/s10
phase=b
printf 'v' >"$work/value"
run add from-file --from-file "$work/value" </dev/null
run add from-file --force --from-file "$work/value" </dev/null
run agent list </dev/null
run agent show bot </dev/null
run agent show nothing-here </dev/null
run show key-5 --json </dev/null
run due --json </dev/null
run doctor --json </dev/null
run export --format json </dev/null
run export --format shell </dev/null
run exec --only key-5,key-6 -- /usr/bin/true </dev/null
run audit --verify </dev/null
run audit --json </dev/null
run recipients list </dev/null
run config require-agent </dev/null
run identity --public </dev/null
# A hand edit: the diagnosis of a broken seal, then `doctor --reseal`.
sed -i 's/^env = "KEY_5"$/env = "KEY_5_EDITED"/' "$work/s10/agentcred.toml"
run list </dev/null
run doctor </dev/null
run doctor --reseal --yes </dev/null
# A recipient added and removed (a public key only: nothing is decrypted with it).
other=age163fyqn5lv92e4fgyz9z0rq7ln5hzw34cfgtwjz5g9sgkzq6e5ujs4rh064
run recipients add "$other" </dev/null
run recipients rm "$other" --yes </dev/null
nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ {print $3}' >"$work/symbols"
python3 - "$work" "$out" <<'PY'
import glob, re, sys
work, out = sys.argv[1], sys.argv[2]
symbols = set(open(f"{work}/symbols").read().split())
# Per command run (a run's dumps together), the functions it ran.
runs = {}
for path in sorted(glob.glob(f"{work}/cg.*")):
    names = {}
    for line in open(path, errors="replace"):
        m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
        if m and m.group(2):
            names[m.group(1)] = m.group(2).strip()
    run = runs.setdefault(path.split("/")[-1].split(".")[1], [])
    run.extend(n for n in names.values() if n in symbols)
# Functions most commands run first, then those fewer run (first-run order among equals):
# a command maps the 64 kB around each page it touches, so the code every command runs
# is packed at the start and each command's own code lies in fewer blocks. The measured
# commands (phase a) are laid out as if the others did not exist; the code only the
# others run follows, ordered the same way among them (mixing them in spread a's code).
def ordered(phase, skip):
    first, count = {}, {}
    for key, run in runs.items():
        if not key.startswith(phase):
            continue
        for name in dict.fromkeys(run):
            if name in skip:
                continue
            first.setdefault(name, len(first))
            count[name] = count.get(name, 0) + 1
    return sorted(first, key=lambda n: (-count[n], first[n]))
# `exec` first, in the order it first runs its functions: it is the hot path (every run
# of a bot starts one, and its overhead over `env` is a target), and laid out alone it
# maps about half the 64 kB blocks of code it did among the others (docs/performance.md,
# "eleventh pass"). The other commands share most of its code.
order = ordered("e", set())
order += ordered("a", set(order))
# What the machine runs natively where valgrind's CPU ran a fallback: valgrind has no
# SHA-NI, so SHA-256 ran in software there. Each goes after the function it stands for;
# `_start` (the entry point, where no profile begins) first.
native = {
    r"4sha26sha256\d+compress256": r"4sha26sha2563x86\d+digest_blocks",
}
for fallback, pattern in native.items():
    at = next((i for i, n in enumerate(order) if re.search(fallback, n)), len(order))
    order[at + 1:at + 1] = sorted(n for n in symbols if re.search(pattern, n) and n not in order)
if "_start" in symbols:
    order.insert(0, "_start")
order += ordered("b", set(order))
with open(out, "w") as f:
    f.write("\n".join(order) + "\n")
print(f"{out}: {len(order)} functions")
PY
