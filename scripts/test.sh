#!/usr/bin/env bash
# The test command of the README: installs what the tests need when it is missing (a real sshd,
# a real PostgreSQL and Python for the end-to-end tests, pass and gpg), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
[ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v curl >/dev/null 2>&1 || need+=(curl)
# The scenario sandbox (tests/it/support/sandbox.rs): its app and LLM stand-ins, and pip for the rollbacks.
[ -x /usr/bin/python3 ] || need+=(python3)
/usr/bin/python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
command -v git >/dev/null 2>&1 || need+=(git)
# Tests check that stopped commands are gone (pgrep) and start them in their own session (setsid).
command -v pgrep >/dev/null 2>&1 || need+=(procps)
command -v setsid >/dev/null 2>&1 || need+=(util-linux)
# A `cmd:` secret source is tested against a real password store (src/secrets/source/command.rs).
command -v pass >/dev/null 2>&1 || need+=(pass)
command -v gpg >/dev/null 2>&1 || need+=(gnupg)
# Shell recordings are checked with a reader nobody here wrote (tests/it/shell.rs: `asciinema cat`).
command -v asciinema >/dev/null 2>&1 || need+=(asciinema)
# tests/it/team.rs: a real Alertmanager posts its own webhook payload.
[ -x /usr/bin/prometheus-alertmanager ] || need+=(prometheus-alertmanager)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
mkdir -p /run/sshd 2>/dev/null || true
# tests/it/team.rs: the official SARIF schema is checked with Python's jsonschema,
# and OTLP spans are decoded with the official protobuf definitions (opentelemetry-proto).
for module in jsonschema:jsonschema opentelemetry.proto:opentelemetry-proto; do
  python3 -c "import ${module%%:*}" 2>/dev/null || python3 -m pip install -q "${module#*:}" \
    || python3 -m pip install -q --break-system-packages "${module#*:}"
done

cargo test --all-targets "$@"
