#!/bin/sh
# Cost of `runbook review FILE --format json` on a run of 100,000 steps (a sealed, valid chain
# written by the real audit writer), against the targets: at most 1 s and 100 MiB peak RSS.
# Usage: scripts/bench-review.sh [STEPS]   (release build; needs /usr/bin/time: apt-get install time)
set -eu
cd "$(dirname "$0")/.."
steps=${1:-100000}
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install -y time)" >&2; exit 2; }
cargo build --release --quiet --bin runbook --example gen_review_audit
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
file=$(target/release/examples/gen_review_audit "$dir" "$steps")
size=$(wc -c < "$file")
target/release/runbook review "$file" --format json > /dev/null # warm the page cache
/usr/bin/time -f '%e %M' -o "$dir/time" target/release/runbook review "$file" --format json > "$dir/out.json"
read -r secs kib < "$dir/time"
mib=$(awk "BEGIN { printf \"%.1f\", $kib / 1024 }")
steps_out=$(grep -c '"step": "step-' "$dir/out.json" || true)
echo "audit file: $steps steps, $(( size / 1048576 )) MiB, $(wc -l < "$file") events; review lists $steps_out steps"
printf '%-24s %10s %10s\n' "" measured target
printf '%-24s %9ss %9ss\n' "wall time" "$secs" 1.0
printf '%-24s %6s MiB %6s MiB\n' "peak RSS" "$mib" 100
ok=$(awk "BEGIN { print ($secs <= 1.0 && $kib <= 102400) ? \"yes\" : \"no\" }")
echo "within targets: $ok"
[ "$ok" = yes ]
