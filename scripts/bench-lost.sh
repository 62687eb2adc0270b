#!/usr/bin/env bash
# Issue 22, the long version of tests/it/ssh_output.rs: short steps over a loopback SSH host
# under CPU load (one `yes` per core), every output file checked byte for byte and every
# capture through the step after it. Prints "lost: N of M" over SSH beside the same steps run
# locally (the baseline: local pipes never lost anything). Target: lost 0 of 10,000.
#   scripts/bench-lost.sh [STEPS]      (default 10000; runs of 20 steps, a fresh connection each)
# Needs root (it creates the login user `rbtest` with /bin/sh, as the tests do), openssh-server
# and python3. Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-10000}
per_run=20
runs=$(( (total + per_run - 1) / per_run ))

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; fi

cargo build --release -q
bin=$PWD/target/release/runbook
work=$(mktemp -d /tmp/rb-lost.XXXXXX)
chmod 755 "$work"
load=()
cleanup() {
  for p in "${load[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/sshd.pid" ] && kill "$(cat "$work/sshd.pid")" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

. scripts/loopback-sshd.sh
loopback_sshd

# The steps, and what each one's output file must hold (the kinds of the test, in turn).
python3 - "$work" "$per_run" <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
steps, want = [], {}
for i in range(n):
    k = i % 6
    if k == 0:   run, cap, out = f"printf '%s' a-{i}", f"c{i}", f"a-{i}"
    elif k == 1: run, cap, out = f"printf 'b-%s\\n' \"$c{i-1}\"", None, f"b-a-{i-1}\n"
    elif k == 2: run, cap, out = f"printf 'e-{i}' >&2", None, f"e-{i}"
    elif k == 3: run, cap, out = f"echo o-{i}; echo e-{i} >&2", f"c{i}", sorted([f"o-{i}", f"e-{i}"])
    elif k == 4: run, cap, out = f"printf '%s\\n' \"$c{i-1}\"; printf 't-{i}'", None, f"o-{i-1}\nt-{i}"
    else:        run, cap, out = f"echo l-{i}", None, f"l-{i}\n"
    steps.append(f"  - id: s{i}\n    title: Step {i}\n    run: {json.dumps(run)}\n" + (f"    capture: {cap}\n" if cap else ""))
    want[f"s{i}"] = out
open(f"{work}/short.yaml", "w").write(
    "version: 1\nid: short\ntitle: Short steps\nrto: 1h\ntargets:\n  app: {}\nsteps:\n"
    + "".join(steps) + "  - {id: done, title: Done, end: resolved}\n")
json.dump(want, open(f"{work}/want.json", "w"))
PY

count() { # $1 = audit dir: "lost steps"
  python3 - "$1" "$work/want.json" <<'PY'
import glob, json, os, sys
audit, want = sys.argv[1], json.load(open(sys.argv[2]))
lost = seen = 0
for trail in glob.glob(audit + "/*.jsonl"):
    finished = {}
    for line in open(trail):
        e = json.loads(line)
        if e["event"] == "step finished" and e["step"] in want:
            finished[e["step"]] = e
    for step, expected in want.items():
        seen += 1
        e = finished.get(step)
        got = open(os.path.join(audit, e["output"]["path"])).read() if e and e.get("output") else ""
        ok = e is not None and e["outcome"] == "ok" and (
            sorted(got.splitlines()) == expected and got.endswith("\n") if isinstance(expected, list) else got == expected)
        if not ok:
            lost += 1
            if lost <= 5:
                print(f"  e.g. {os.path.basename(trail)} {step}: recorded {got!r}", file=sys.stderr)
print(lost, seen)
PY
}

for _ in $(seq "$(nproc)"); do yes > /dev/null & load+=($!); done
echo "== short steps under load ($(nproc) x yes), $runs runs of $per_run steps"
t0=$(date +%s)
for _ in $(seq "$runs"); do
  "$bin" --audit-dir "$work/ssh" run --yes --target "app=$dest" --ssh-config "$work/ssh_config" "$work/short.yaml" >/dev/null 2>&1 || true
done
t_ssh=$(( $(date +%s) - t0 ))
local_runs=$(( runs / 5 > 0 ? runs / 5 : 1 ))
for _ in $(seq "$local_runs"); do
  "$bin" --audit-dir "$work/local" run --yes --target "app=local" "$work/short.yaml" >/dev/null 2>&1 || true
done
read -r lost_ssh seen_ssh < <(count "$work/ssh")
read -r lost_local seen_local < <(count "$work/local")
printf '  over SSH: lost: %s of %s (%s s)   locally (baseline): lost: %s of %s   target: lost 0\n' \
  "$lost_ssh" "$seen_ssh" "$t_ssh" "$lost_local" "$seen_local"
