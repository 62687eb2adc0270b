#!/bin/sh
# Renders, in headless Chromium, the pictures of docs/drills.md from real runs of
# examples/local-drill.yaml made here: the evidence page of a drill signed by a throwaway key in
# a throwaway ssh-agent (docs/evidence.png), and the trend chart of a review of three drills
# and an incident whose RTO clocks started before their launch (docs/trend.png).
# Usage: scripts/render-evidence-html.sh   (installs chromium with apt-get when missing)
set -eu
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
    apt-get install -y chromium >/dev/null
fi
cargo build --quiet --bin runbook
rb=$PWD/target/debug/runbook
work=$(mktemp -d)
agent_pid=
trap '[ -n "$agent_pid" ] && kill "$agent_pid"; rm -rf "$work"' EXIT
mkdir -m 700 "$work/runs"
ssh-keygen -q -t ed25519 -N '' -C alice -f "$work/alice"
ssh-agent -D -a "$work/agent.sock" >/dev/null 2>&1 &
agent_pid=$!
while [ ! -S "$work/agent.sock" ]; do sleep 0.1; done
SSH_AUTH_SOCK=$work/agent.sock ssh-add -q "$work/alice" 2>/dev/null
echo "alice $(cut -d' ' -f1,2 "$work/alice.pub")" > "$work/allowed_signers"
drill() {
    SSH_AUTH_SOCK=$work/agent.sock "$rb" "$@" --yes --operator alice \
        --set demo_dir="$work/demo" --audit-dir "$work/runs" >/dev/null 2>&1 || true
}
# The RTO clock started before the launch (--since: the page came in earlier), less so each time.
ago() { date -u -d "$1 seconds ago" +%Y-%m-%dT%H:%M:%SZ; }
drill drill examples/local-drill.yaml --since "$(ago 40)"
drill run examples/local-drill.yaml --since "$(ago 50)"
drill drill examples/local-drill.yaml --since "$(ago 25)"
drill drill examples/local-drill.yaml --since "$(ago 12)"
shoot() { # HTML PNG HEIGHT
    chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --no-first-run --hide-scrollbars \
        --screenshot="$PWD/$2" --window-size=1200,"$3" "file://$1" 2>/dev/null
}
"$rb" --audit-dir "$work/runs" evidence last -o "$work/evidence.html" --signers "$work/allowed_signers"
shoot "$work/evidence.html" docs/evidence.png 2200
"$rb" review "$work"/runs/*.jsonl --format html -o "$work/trend.html"
shoot "$work/trend.html" docs/trend.png 720
echo "wrote docs/evidence.png and docs/trend.png from $(ls "$work/runs" | grep -c '\.jsonl$') runs"
