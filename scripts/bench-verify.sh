#!/usr/bin/env bash
# What trust costs (design §12), each figure beside its baseline, in one run:
#   - `runbook audit verify` of a real run of 1,000 steps with 1 GiB of output files, against
#     `sha256sum` of the same files (target <= 1.2x);
#   - signing: a one-step run signed through a real ssh-agent against the same run --no-sign.
# Everything lives in a temporary directory under $BENCH_DIR (default: target/), warm cache.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v bc >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq bc >/dev/null; }
cargo build --release --quiet
bin=$PWD/target/release/runbook
base=${BENCH_DIR:-$PWD/target}
work=$(mktemp -d "$base/bench-verify.XXXXXX")
trap 'kill "${agent_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

steps=1000
book=$work/big.yaml
{
  echo "version: 1"
  echo "id: big"
  echo "title: A thousand steps of 1 MiB each"
  echo "rto: 1h"
  echo "steps:"
  for i in $(seq 1 $steps); do
    echo "  - {id: s$i, title: Step $i, run: head -c 1048576 /dev/urandom}"
  done
  echo "  - {id: done, title: Done, end: resolved}"
} > "$book"
echo "generating a run of $steps steps x 1 MiB ..."
"$bin" run "$book" --yes --no-sign --audit-dir "$work/runs" >/dev/null 2>&1
trail=$(ls "$work"/runs/*.jsonl)
run=$(basename "$trail" .jsonl)

best() { # best wall-clock seconds of 3 runs of "$@"
  local best=999999 t
  for _ in 1 2 3; do
    local start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    t=$(echo "$(date +%s.%N) - $start" | bc -l)
    best=$(echo "if ($t < $best) $t else $best" | bc -l)
  done
  printf '%.3f' "$best"
}
cat "$work/runs/$run"/*.out >/dev/null   # warm the page cache for both
verify=$(best "$bin" audit verify "$trail")
sha=$(best sh -c "sha256sum '$work/runs/$run'/*.out")
printf '%-52s %8ss\n' "runbook audit verify ($steps steps, 1 GiB outputs)" "$verify"
printf '%-52s %8ss\n' "sha256sum of the same files" "$sha"
printf '%-52s %8.2fx  (target <= 1.2x)\n' "ratio" "$(echo "$verify / $sha" | bc -l)"

# Signing: the same one-step run, signed by a key in a real ssh-agent, and unsigned.
ssh-keygen -q -t ed25519 -N '' -f "$work/key"
eval "$(ssh-agent -s -a "$work/agent.sock")" >/dev/null
agent_pid=$SSH_AGENT_PID
ssh-add -q "$work/key" 2>/dev/null
small=$work/small.yaml
printf 'version: 1\nid: small\ntitle: Small\nrto: 1m\nsteps:\n  - {id: a, title: A, run: "true"}\n  - {id: done, title: Done, end: resolved}\n' > "$small"
runs=20
timed() { # mean milliseconds per run of "$@" over $runs runs
  local start=$(date +%s%N)
  for _ in $(seq 1 $runs); do "$@" >/dev/null 2>&1; done
  echo $(( ($(date +%s%N) - start) / runs / 1000000 ))
}
signed=$(timed "$bin" run "$small" --yes --audit-dir "$work/signed")
unsigned=$(timed "$bin" run "$small" --yes --no-sign --audit-dir "$work/unsigned")
grep -q '"signature"' "$work"/signed/*.jsonl || { echo "the signed runs carry no signature" >&2; exit 1; }
printf '%-52s %8sms\n' "one-step run, signed through ssh-agent (mean of $runs)" "$signed"
printf '%-52s %8sms\n' "the same run, --no-sign" "$unsigned"
printf '%-52s %8sms  (a pre-flight probe and the seal)\n' "cost of signing per run" "$((signed - unsigned))"
