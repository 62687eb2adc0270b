#!/usr/bin/env bash
# Benchmarks of the team's audit host (issue 27, design §19), each figure beside its baseline:
#   1. the warm per-step cost of 200 trivial steps with and without `--audit-host` (the trail
#      mirrored over SSH as it goes), the steps on a warm SSH target and on the local machine;
#      target: at most 1 ms more per step. Best of $RUNS (default 5), the two taking turns.
#   2. the delay from a `step started` line written to the trail to `runbook watch` showing
#      it: median and worst of 200 steps (target <= 1 s), for a watch of the local audit dir
#      and, through the audit host, for `watch --audit-host` when this build has it.
# Per-step figures are (time of 201 steps - time of 1 step) / 200, so connecting is not
# counted in them. The audit host and the target are one real sshd on 127.0.0.1 (user
# `rbtest`, see scripts/loopback-sshd.sh); needs root for that user, and python3.
# RUNBOOK_BIN=PATH benchmarks another build instead of building this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
if [ -z "${RUNBOOK_BIN:-}" ]; then
  cargo build --release --quiet --bin runbook
  RUNBOOK_BIN=$PWD/target/release/runbook
fi
work=$(mktemp -d /tmp/rb-bench-team.XXXXXX); chmod 755 "$work"
cleanup() { [ -f "$work/sshd.pid" ] && kill "$(cat "$work/sshd.pid")" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
. scripts/loopback-sshd.sh
loopback_sshd
mkdir -p "$work/host"; chown rbtest "$work/host"; chmod 2770 "$work/host"
audit_host="ssh://rbtest@127.0.0.1:$port$work/host"
ssh_opts=(--identity "$work/client" --known-hosts "$work/known_hosts" --ssh-config "$work/ssh_config")

book() { # book NAME STEPS COMMAND TARGETS
  { printf 'version: 1\nid: %s\ntitle: %s\nrto: 1h\n%bsteps:\n' "$1" "$1" "$4"
    for i in $(seq "$2"); do printf '  - {id: s%d, title: Step %d, run: "%s"}\n' "$i" "$i" "$3"; done
    printf '  - {id: done, title: Done, end: resolved}\n'; } > "$work/$1.yaml"
}
book ssh1 1 true 'targets:\n  app: {}\n'; book ssh201 201 true 'targets:\n  app: {}\n'
book local1 1 true ''; book local201 201 true ''
ms() { python3 -c 'import time; print(int(time.monotonic() * 1000))'; }
run() { # run MIRROR(yes|no) BOOK
  local extra=()
  [ "$1" = yes ] && extra=(--audit-host "$audit_host")
  case $2 in ssh*) extra+=(--target "app=$dest") ;; esac
  "$RUNBOOK_BIN" --audit-dir "$work/audit" run --yes --no-sign "${ssh_opts[@]}" "${extra[@]}" \
    "$work/$2.yaml" > /dev/null 2> "$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
}
declare -A best
for m in no yes; do for b in ssh1 ssh201 local1 local201; do best[$m$b]=999999; done; done
for _ in $(seq "$RUNS"); do
  for m in no yes; do
    for b in ssh1 ssh201 local1 local201; do
      t0=$(ms); run "$m" "$b"; t=$(( $(ms) - t0 ))
      [ "$t" -lt "${best[$m$b]}" ] && best[$m$b]=$t
    done
  done
done
per_step() { python3 -c "print(f'{($1 - $2) / 200:.2f}')"; }
echo "1. warm per-step cost, 200 trivial steps (best of $RUNS; target: at most 1 ms more with the audit host)"
printf '   %-16s %12s %12s %10s\n' "steps on" "no mirror" "mirrored" "more"
for t in ssh local; do
  a=$(per_step "${best[no${t}201]}" "${best[no${t}1]}")
  b=$(per_step "${best[yes${t}201]}" "${best[yes${t}1]}")
  printf '   %-16s %9s ms %9s ms %7s ms\n' "$t" "$a" "$b" "$(python3 -c "print(f'{$b - $a:+.2f}')")"
done
printf '   a one-step run, whole process: %s ms without, %s ms with the audit host (over ssh)\n' \
  "${best[nossh1]}" "${best[yesssh1]}"

echo "2. from a step's start in the trail to watch showing it, 200 steps (target <= 1 s)"
book slow 200 'sleep 0.05' ''
watch_delay() { # watch_delay LABEL WATCH-ARGS...
  local label=$1; shift
  python3 - "$RUNBOOK_BIN" "$work" "$label" "$audit_host" "$@" <<'PY'
import glob, os, subprocess, sys, threading, time
bin, work, label, audit_host, *watch_args = sys.argv[1:]
audit = os.path.join(work, "watch-audit-" + label)
os.makedirs(audit)
run = subprocess.Popen([bin, "--audit-dir", audit, "run", "--yes", "--no-sign",
                        "--identity", f"{work}/client", "--known-hosts", f"{work}/known_hosts",
                        "--ssh-config", f"{work}/ssh_config", "--audit-host", audit_host,
                        f"{work}/slow.yaml"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = time.monotonic() + 30
while not glob.glob(f"{audit}/*.jsonl"):
    if time.monotonic() > deadline: sys.exit(f"{label}: the run wrote no trail")
    time.sleep(0.005)
trail = glob.glob(f"{audit}/*.jsonl")[0]
# The local trail is the one the running process writes: a line's time is when it appears.
written, shown = {}, {}
def poll():
    seen = 0
    while run.poll() is None or seen < os.path.getsize(trail):
        with open(trail, "rb") as f:
            f.seek(seen); data = f.read()
        whole = data[: data.rfind(b"\n") + 1]
        now = time.monotonic()
        for line in whole.splitlines():
            if b'"event":"step started"' in line:
                step = line.split(b'"step":"')[1].split(b'"')[0].decode()
                written.setdefault(step, now)
        seen += len(whole)
        time.sleep(0.002)
poller = threading.Thread(target=poll); poller.start()
args = [a.replace("AUDIT", audit) for a in watch_args]
watch = subprocess.Popen([bin, "watch", "last", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=dict(os.environ, NO_COLOR="1"))
for raw in watch.stdout:
    text = raw.decode(errors="replace")
    if ": started on" in text:
        step = text.split("] ", 1)[1].split(":", 1)[0]
        shown.setdefault(step, time.monotonic())
watch.wait(); run.wait(); poller.join()
delays = sorted(shown[s] - written[s] for s in written if s in shown and s.startswith("s"))
if len(delays) < 200:
    sys.exit(f"{label}: watch showed {len(delays)} of 200 starts")
print(f"   {label:<28} median {delays[len(delays)//2]*1000:6.0f} ms   worst {delays[-1]*1000:6.0f} ms   (target 1000 ms)")
PY
}
watch_delay "local audit dir" --audit-dir AUDIT
watch_delay "through the audit host" --audit-dir "$work/empty" --audit-host "$audit_host" "${ssh_opts[@]}" ||
  echo "   through the audit host: not measured (watch --audit-host failed)"
