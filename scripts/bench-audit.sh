#!/bin/sh
# Cost of appending one audit event, with and without fsync, and of verifying a file.
# The audit dir is a temporary directory under $BENCH_DIR (default: the current directory),
# so run it on the filesystem the audit dir will live on.
set -eu
cd "$(dirname "$0")/.."
exec cargo test --release --test it -- --ignored --exact audit::bench_append --nocapture
