#!/bin/sh
# Times `runbook test`: the shipped catalog's cases (target < 1 s), and 1,000 cases of a
# generated 200-step runbook (target ≤ 2 s). Each case walks its runbook with the real engine
# over the stub transport; `took` is virtual, so the figures are the engine's own cost.
# Usage: scripts/bench-test.sh   (builds --release; RUNBOOK_BIN=PATH times that binary instead,
# e.g. an earlier build, for a before/after on the same machine at the same time)
set -eu

cd "$(dirname "$0")/.."
if [ -n "${RUNBOOK_BIN:-}" ]; then
    bin=$RUNBOOK_BIN
else
    cargo build --release --quiet
    bin="$PWD/target/release/runbook"
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# The 200-step runbook: 181 commands (expect, retries, timeouts, on_failure; a capture before
# each decision) with a decision every 20 steps on the captured output, then its ends.
rb="$dir/big.yaml"
{
    printf 'version: 1\nid: big\ntitle: A generated 200-step runbook\nrto: 30m\n'
    printf 'inputs:\n  service: {description: systemd unit, default: api}\n'
    printf 'targets:\n  app: {description: application host, default: local}\n'
    printf 'steps:\n'
    s=0
    while [ "$s" -lt 190 ]; do
        if [ $((s % 20)) -eq 19 ]; then
            printf '  - id: step-%d\n    title: Healthy after %d?\n    choose:\n' "$s" "$s"
            printf '      - {label: Healthy, goto: step-%d, when: {var: out_%d, matches: "^ok"}}\n' $((s + 1)) $((s - 1))
            printf '      - {label: Give up, goto: escalate}\n'
        else
            printf '  - id: step-%d\n    title: Step %d of {{ service }}\n' "$s" "$s"
            printf '    run: systemctl status "$service"\n    rto: 30s\n    timeout: 2m\n'
            printf '    retry: {attempts: 2, delay: 5s}\n    expect: {exit: [0, 3]}\n'
            if [ $((s % 20)) -eq 18 ]; then printf '    capture: out_%d\n' "$s"; fi
            printf '    on_failure: escalate\n'
        fi
        s=$((s + 1))
    done
    while [ "$s" -lt 198 ]; do
        printf '  - {id: step-%d, title: Check %d, run: "true"}\n' "$s" "$s"
        s=$((s + 1))
    done
    printf '  - {id: done, title: Done, end: resolved}\n'
    printf '  - {id: escalate, title: Escalate, end: escalated}\n'
} > "$rb"
"$bin" validate "$rb" > /dev/null

mkdir "$dir/tests"
i=0
while [ "$i" -lt 1000 ]; do
    {
        printf 'runbook: big\nname: case %d\nsteps:\n' "$i"
        # Every decision's variable says ok; one step per case fails once, then succeeds.
        d=18
        while [ "$d" -lt 190 ]; do
            printf '  step-%d: {stdout: ok}\n' "$d"
            d=$((d + 20))
        done
        printf '  step-%d: [{exit: 1}, {exit: 0}]\n' $(( (i % 9) * 20 ))
        printf 'expect:\n  outcome: resolved\n  not_visits: [escalate]\n  within_rto: true\n'
    } > "$dir/tests/case-$i.test.yaml"
    i=$((i + 1))
done

# Best of 5 runs, in milliseconds; the run must pass, or the figure would time a failure.
best_of() {
    best=""
    for _ in 1 2 3 4 5; do
        start=$(date +%s%N)
        if ! "$@" > "$dir/out.txt" 2>&1; then
            echo "runbook test failed:" >&2
            tail -n 20 "$dir/out.txt" >&2
            exit 1
        fi
        end=$(date +%s%N)
        t=$(( (end - start) / 1000000 ))
        if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
    done
    echo "$best"
}

shipped=$(ls runbooks/tests/*.test.yaml | wc -l)
ms=$(best_of "$bin" test runbooks/)
printf 'runbook test runbooks/ (%d shipped cases):        %5d ms  (target < 1000 ms)\n' "$shipped" "$ms"
ms=$(best_of "$bin" test "$dir")
printf 'runbook test: 1,000 cases of a 200-step runbook:  %5d ms  (target <= 2000 ms)\n' "$ms"
