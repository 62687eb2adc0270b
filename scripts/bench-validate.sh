#!/bin/sh
# Times `runbook validate DIR` on 1,000 generated runbooks of ~20 steps each (inputs, targets,
# choose, on_failure, regexes, durations, a capture), against the target of ≤ 1000 ms.
# Usage: scripts/bench-validate.sh   (builds --release; uses hyperfine when installed)
set -eu

cd "$(dirname "$0")/.."
cargo build --release --quiet
bin="$PWD/target/release/runbook"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

i=0
while [ "$i" -lt 1000 ]; do
    f="$dir/rb-$i.yaml"
    {
        printf 'version: 1\nid: rb-%d\ntitle: Generated runbook %d\nrto: 30m\n' "$i" "$i"
        printf 'inputs:\n  service: {description: systemd unit, default: api}\n  db_name: {default: app}\n'
        printf 'targets:\n  app: {description: application host, default: local}\n'
        printf 'steps:\n'
        s=0
        while [ "$s" -lt 18 ]; do
            printf '  - id: step-%d\n    title: Step %d of {{ service }}\n' "$s" "$s"
            printf '    notes: Check the dashboard for {{ db_name }} first.\n'
            printf '    target: app\n    run: systemctl status "$service" | grep -c active\n'
            printf '    rto: 30s\n    timeout: 2m\n    retry: {attempts: 2, delay: 5s}\n'
            printf '    expect: {exit: [0, 3], stdout: "^[0-9]+$"}\n'
            printf '    capture: out_%d\n    on_failure: escalate\n' "$s"
            s=$((s + 1))
        done
        printf '  - id: decide\n    title: Healthy?\n    choose:\n'
        printf '      - {label: Healthy, goto: done, when: {var: out_17, matches: "^[1-9]"}}\n'
        printf '      - {label: Retry, goto: step-0}\n      - {label: Give up, goto: escalate}\n'
        printf '  - {id: escalate, title: Escalate, end: escalated, message: "{{ operator }} escalated"}\n'
        printf '  - {id: done, title: Done, end: resolved}\n'
        printf 'cleanup:\n  - {id: restart, title: Start again, run: systemctl start "$service"}\n'
    } > "$f"
    i=$((i + 1))
done

# The generated files must be valid, or the benchmark would time error reporting instead.
if ! "$bin" validate "$dir" > /dev/null 2> "$dir/check.txt"; then
    echo "the generated runbooks do not validate:" >&2
    head -n 20 "$dir/check.txt" >&2
    exit 1
fi

if command -v hyperfine > /dev/null 2>&1; then
    hyperfine --warmup 1 --runs 5 --export-json "$dir/h.json" "$bin validate $dir" > /dev/null
    ms=$(sed -n 's/.*"mean": *\([0-9.]*\).*/\1/p' "$dir/h.json" | head -n 1 | awk '{printf "%d", $1 * 1000}')
else
    best=""
    for _ in 1 2 3 4 5; do
        start=$(date +%s%N)
        "$bin" validate "$dir" 2> /dev/null
        end=$(date +%s%N)
        t=$(( (end - start) / 1000000 ))
        if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
    done
    ms=$best
fi
echo "validate 1000 runbooks: $ms ms (target ≤ 1000 ms)"
