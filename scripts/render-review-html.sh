#!/bin/sh
# Renders the HTML review of a real drill (examples/local-drill.yaml, run here unattended) in
# headless Chromium to docs/review.png, the picture shown in docs/review.md.
# Usage: scripts/render-review-html.sh [OUT.png]   (installs chromium with apt-get when missing)
set -eu
cd "$(dirname "$0")/.."
out=${1:-docs/review.png}
if ! command -v chromium >/dev/null 2>&1; then
    apt-get install -y chromium >/dev/null
fi
cargo build --quiet --bin runbook
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/debug/runbook drill examples/local-drill.yaml --yes --operator alice \
    --set demo_dir="$work/demo" --audit-dir "$work/runs" >/dev/null 2>&1 || true
run=$(ls "$work/runs" | grep '\.jsonl$' | head -n 1)
target/debug/runbook review "$work/runs/$run" --format html -o "$work/review.html"
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --no-first-run --hide-scrollbars \
    --screenshot="$PWD/$out" --window-size=1200,1400 "file://$work/review.html" 2>/dev/null
echo "wrote $out from run $run"
