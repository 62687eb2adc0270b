#!/usr/bin/env bash
# No import circles between modules (issue 26), checked with public tools: cargo-modules draws
# the crate's modules and the `uses` edges between them (functions, types and traits folded
# into their modules), and coreutils' `tsort` fails on any loop. The edges between a module
# and its own parent or child are left out: `mod x; pub use x::Y;` and `super::` are how a
# folder holds its files, not imports between peers.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-modules >/dev/null 2>&1 || cargo install cargo-modules@0.27.0 --locked
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
cargo modules dependencies --lib --no-externs --no-sysroot --no-fns --no-types --no-traits --no-owns 2>/dev/null |
  sed -nE 's/^ *"([^"]+)" -> "([^"]+)" \[label="uses".*/\1 \2/p' |
  awk '{ a = $1 "::"; b = $2 "::"; if (index(a, b) == 1 || index(b, a) == 1) next; print }' > "$edges"
echo "$(wc -l < "$edges") uses edges between modules that are not parent and child"
if ! tsort "$edges" > /dev/null; then
  echo "import circle(s) above: each list is one loop of modules" >&2
  exit 1
fi
echo "no import circles"
