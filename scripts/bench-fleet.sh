#!/usr/bin/env bash
# Benchmarks of fleet execution (issue 13, design §13), each figure printed beside its baseline
# with the ratio and the issue's target:
#   1. one trivial command (`true`) on 50 hosts, cold (connections included): `runbook run
#      --forks 50` on a role bound to the group of 50, vs `parallel-ssh -p 50` (issue 30's
#      targets: no slower than parallel-ssh, <= 1.05x the floor below, and <= 1.3x the floor
#      with the classic key exchange; issue 13's 0.7x proved out of reach: the key exchange
#      is most of the time and every tool pays it); Ansible's ad-hoc `command` module with 50 forks shown too; then both
#      again with the classic key exchange (`KexAlgorithms curve25519-sha256`) for both: with
#      the default post-quantum one (sntrup761x25519, ~130 ms of client CPU per connection on
#      OpenSSH 9.2) the two cores spend most of the run on key exchanges, which both tools
#      pay alike; the second pair shows what each adds to them. CPU is the machine's busy
#      time during the run (all processes, sshd included). Beside them, the floor of any tool
#      that opens one OpenSSH connection per host with this ssh config: the $N `ssh host true`
#      started at once by `xargs -P` (no Python, no lease, no audit);
#   2. 200 trivial steps on one warm host: runbook vs a shell loop of `ssh` over a ControlMaster
#      socket (target <= 0.5x) and vs an Ansible playbook of `command` tasks with pipelining
#      over its warm ControlPersist master (target: runbook >= 30x faster);
#   3. the first command on a fresh host: a one-step `runbook run` (connection, lease, step,
#      audit: the whole process) vs one `ssh host true` (target <= 1.1x).
# Every figure is the median of $RUNS runs (default 3), the tools taking turns in each round so
# that the load of a shared machine falls on all of them alike. Per-step figures are
# (time of 201 steps - time of 1 step) / 200, so connecting is not counted in them.
#
# The 50 hosts are the shell version of tests/it/support/fleet.rs: 127.0.0.2 .. 127.0.0.51 (the
# whole 127.0.0.0/8 is loopback), served by 4 sshd instances of up to 15 addresses each (one
# sshd holds at most 16 listening sockets), each address with its own RUNBOOK_LEASE_BASE
# (`Match LocalAddress` + `SetEnv`), so that every host is its own lease holder.
#
# Needs root (it creates the login user `rbtest` with /bin/sh, as the tests do); installs
# openssh-server, pssh and python3-venv with apt-get when missing, and ansible-core from PyPI in
# a venv under ~/.cache/runbook-bench. Everything listens on loopback only.
# RUNBOOK_BIN=PATH benchmarks another build of runbook instead of building this tree's;
# SECTIONS="1 3" runs only those sections (default: all three).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
SECTIONS=${SECTIONS:-1 2 3}
section() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
N=50
PER_SSHD=15
STEPS=200

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
command -v parallel-ssh >/dev/null || need+=(pssh)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; fi
mkdir -p /run/sshd
id rbtest >/dev/null 2>&1 || useradd -m -s /bin/sh rbtest
usermod -p '*' rbtest
mkdir -p /home/rbtest && chown rbtest /home/rbtest

venv=${XDG_CACHE_HOME:-$HOME/.cache}/runbook-bench/ansible
if [ ! -x "$venv/bin/ansible" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q ansible-core
fi

if [ -n "${RUNBOOK_BIN:-}" ]; then
  bin=$RUNBOOK_BIN
else
  cargo build --release -q
  bin=$PWD/target/release/runbook
fi

work=$(mktemp -d /tmp/rb-bench-fleet.XXXXXX)
chmod 755 "$work"
cleanup() {
  for p in "$work"/sshd-*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
  for s in "$work"/cm "$work"/cp-*/*; do [ -S "$s" ] && ssh -S "$s" -O exit x 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

# ---- 50 loopback hosts ------------------------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -f "$work/client"
cp "$work/client.pub" "$work/keys"; chmod 644 "$work/keys"
addr() { echo "127.0.0.$(($1 + 2))"; }       # host index 0.. -> 127.0.0.2..
free_port() { python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$1"; }
: > "$work/known_hosts"; : > "$work/hosts.txt"
servers=$(( (N + PER_SSHD - 1) / PER_SSHD ))
declare -a port_of
t0=$(date +%s%N)
for k in $(seq 0 $((servers - 1))); do
  first=$((k * PER_SSHD)); last=$(( first + PER_SSHD - 1 )); [ $last -lt $N ] || last=$((N - 1))
  ssh-keygen -q -t ed25519 -N '' -f "$work/hostkey-$k"
  for _attempt in 1 2 3 4 5; do
    port=$(free_port "$(addr $first)")
    cfg=$work/sshd_config-$k
    {
      echo "Port $port"
      for i in $(seq $first $last); do echo "ListenAddress $(addr $i)"; done
      cat <<EOF
HostKey $work/hostkey-$k
AuthorizedKeysFile $work/keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $work/sshd-$k.pid
AllowUsers rbtest
PrintMotd no
PrintLastLog no
MaxStartups 200
EOF
      for i in $(seq $first $last); do
        a=$(addr $i); mkdir -p "$work/leases-$a"; chmod 1777 "$work/leases-$a"
        printf 'Match LocalAddress %s\n  SetEnv RUNBOOK_LEASE_BASE=%s RBTEST_HOST=web-%d\n' "$a" "$work/leases-$a" $((i + 1))
      done
    } > "$cfg"
    rm -f "$work/sshd-$k.pid"
    /usr/sbin/sshd -f "$cfg" -E "$work/sshd-$k.log"
    for _ in $(seq 200); do [ -s "$work/sshd-$k.pid" ] && break; sleep 0.01; done
    if [ -s "$work/sshd-$k.pid" ] && ! grep -q "Bind to port" "$work/sshd-$k.log"; then break; fi
    [ -s "$work/sshd-$k.pid" ] && kill "$(cat "$work/sshd-$k.pid")"; rm -f "$work/sshd-$k.pid"; : > "$work/sshd-$k.log"
  done
  [ -s "$work/sshd-$k.pid" ] || { echo "sshd $k did not start:"; cat "$work/sshd-$k.log"; exit 1; }
  for i in $(seq $first $last); do
    port_of[$i]=$port
    echo "[$(addr $i)]:$port $(cut -d' ' -f1,2 "$work/hostkey-$k.pub")" >> "$work/known_hosts"
    echo "rbtest@$(addr $i):$port" >> "$work/hosts.txt"
  done
done
echo "== $N hosts on $servers sshd instances, up in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
printf 'Host *\n  User rbtest\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n  BatchMode yes\n' \
  "$work/client" "$work/known_hosts" > "$work/ssh_config"
{ cat "$work/ssh_config"; echo "  KexAlgorithms curve25519-sha256"; } > "$work/ssh_config_classic"

# runbook's inventory, Ansible's, and the books.
{ echo "hosts:"
  for i in $(seq 0 $((N - 1))); do echo "  web-$((i + 1)): {ssh: \"rbtest@$(addr $i):${port_of[$i]}\"}"; done
  printf 'groups:\n  web: [%s]\n' "$(seq -s ', ' -f 'web-%g' 1 $N)"
} > "$work/inventory.yaml"
{ echo "[web]"
  for i in $(seq 0 $((N - 1))); do echo "web-$((i + 1)) ansible_host=$(addr $i) ansible_port=${port_of[$i]}"; done
  printf '[all:vars]\nansible_user=rbtest\nansible_python_interpreter=/usr/bin/python3\nansible_ssh_common_args=-F %s\n' "$work/ssh_config"
} > "$work/hosts.ini"
cat > "$work/ansible.cfg" <<EOF
[defaults]
host_key_checking = True
local_tmp = $work/ansible-local
[ssh_connection]
pipelining = True
EOF
export ANSIBLE_CONFIG=$work/ansible.cfg ANSIBLE_HOME=$work/ansible-home
steps_book() { # $1 = number of trivial steps before `done`; $2 = the role's name
  { printf 'version: 1\nid: steps\ntitle: Steps\nrto: 1h\ntargets:\n  %s: {}\nsteps:\n' "$2"
    for i in $(seq "$1"); do printf '  - {id: s%d, title: Step %d, run: "true"}\n' "$i" "$i"; done
    printf '  - {id: done, title: Done, end: resolved}\n'; } > "$work/steps$1-$2.yaml"
}
steps_book 1 web; steps_book 1 app; steps_book $((STEPS + 1)) app
play() { # $1 = number of `command: true` tasks on web-1
  { printf -- '- hosts: web-1\n  gather_facts: false\n  tasks:\n'
    for _ in $(seq "$1"); do printf '    - command: "true"\n'; done; } > "$work/play$1.yml"
}
play 1; play $((STEPS + 1))

# Every host answers, each on its own address (and a known host key) before anything is timed.
for i in $(seq 0 $((N - 1))); do
  got=$(ssh -F "$work/ssh_config" -p "${port_of[$i]}" "rbtest@$(addr $i)" 'echo ${SSH_CONNECTION}' | cut -d' ' -f3) &&
    [ "$got" = "$(addr $i)" ] || { echo "host $i ($(addr $i)) answered from '$got'"; exit 1; }
done

# ---- helpers ------------------------------------------------------------------------------
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# The machine's busy CPU time so far, in ms (every process: the tools, ssh, sshd, shells).
busy_ms() { awk -v hz="$(getconf CLK_TCK)" '/^cpu /{print int(($2+$3+$4+$7+$8) * 1000 / hz)}' /proc/stat; }
# `timed NAME CMD...`: runs CMD, appends its wall time in ms to the array NAME and the busy
# CPU time to NAME_cpu; a failure aborts.
timed() {
  local name=$1; shift
  local t0 c0; t0=$(now_ms); c0=$(busy_ms)
  if ! "$@" > "$work/last.out" 2>&1; then echo "FAILED: $*"; tail -20 "$work/last.out"; exit 1; fi
  eval "$name+=($(( $(now_ms) - t0 ))); ${name}_cpu+=($(( $(busy_ms) - c0 )))"
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# Other builds share the machine: each section says how loaded it was when it started.
load() { echo "1-min load average $(cut -d' ' -f1 /proc/loadavg) on $(nproc) cores"; }
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN {printf f, a / b}'; }

rb() { "$bin" --audit-dir "$work/audit" run --yes --identity "$work/client" --known-hosts "$work/known_hosts" \
  --ssh-config "${SSHCFG:-$work/ssh_config}" "$@"; }
rb_fleet() { rb "$work/steps1-web.yaml" --target web=web --inventory "$work/inventory.yaml" --forks $N "$@"; }
pssh_fleet() { parallel-ssh -h "$work/hosts.txt" -p $N -t 60 -x "-F ${1:-$work/ssh_config}" true; }
rb_classic() { SSHCFG=$work/ssh_config_classic rb_fleet; }
pssh_classic() { pssh_fleet "$work/ssh_config_classic"; }
# The floor: one plain `ssh host true` per host, all started at once (`ssh://user@host:port`
# destinations, so that xargs starts each ssh itself, with no shell in between).
ssh_fleet() {
  sed 's|^|ssh://|' "$work/hosts.txt" | xargs -P $N -I{} ssh -F "${1:-$work/ssh_config}" {} true
}
ssh_classic() { ssh_fleet "$work/ssh_config_classic"; }
cold=0
ansible_fleet() { # a control path of its own each time: cold, connections included
  cold=$((cold + 1)); mkdir -p "$work/cp-cold$cold"
  ANSIBLE_SSH_CONTROL_PATH_DIR=$work/cp-cold$cold "$venv/bin/ansible" all -i "$work/hosts.ini" -m command -a true -f $N
}
stop_masters() { for s in "$work"/cp-cold*/*; do [ -S "$s" ] && ssh -S "$s" -O exit x >/dev/null 2>&1; done; rm -rf "$work"/cp-cold*; }

# ---- 1. one command on 50 hosts -----------------------------------------------------------
if section 1; then
echo "== 1. one trivial command on $N hosts, cold (median of $RUNS; $(load))"
if rb_fleet > "$work/rb-fleet.out" 2>&1; then rb_ok=1; else
  rb_ok=0; echo "  runbook: not available yet ($(grep -m1 -i 'error\|not supported\|unexpected' "$work/rb-fleet.out" || head -1 "$work/rb-fleet.out"))"
fi
if [ $rb_ok = 1 ]; then
  # Each host's sessions have a lease base of their own: a run that reached every host left a
  # lease directory on each.
  leased=$(find "$work" -maxdepth 2 -path "$work/leases-*/runbook-lease-*" | wc -l)
  [ "$leased" = $N ] || echo "  warning: runbook took a lease on $leased of $N hosts"
fi
pssh_t=(); ansible_t=(); rbf_t=(); pssh2_t=(); rbf2_t=(); floor_t=(); floor2_t=()
for _ in $(seq "$RUNS"); do
  timed pssh_t pssh_fleet
  timed floor_t ssh_fleet
  timed ansible_t ansible_fleet; stop_masters
  if [ $rb_ok = 1 ]; then timed rbf_t rb_fleet; fi
  timed pssh2_t pssh_classic
  timed floor2_t ssh_classic
  if [ $rb_ok = 1 ]; then timed rbf2_t rb_classic; fi
done
pssh_m=$(median "${pssh_t[@]}"); ansible_m=$(median "${ansible_t[@]}")
printf '  parallel-ssh -p %d: %s ms, CPU %s ms   (runs: %s)\n' $N "$pssh_m" "$(median "${pssh_t_cpu[@]}")" "${pssh_t[*]}"
printf '  ansible -m command -f %d (pipelining): %s ms   (runs: %s)\n' $N "$ansible_m" "${ansible_t[*]}"
floor_m=$(median "${floor_t[@]}")
printf '  floor, %d plain `ssh host true` at once (xargs -P %d): %s ms, CPU %s ms = %s x parallel-ssh   (runs: %s)\n' \
  $N $N "$floor_m" "$(median "${floor_t_cpu[@]}")" "$(div "$floor_m" "$pssh_m")" "${floor_t[*]}"
if [ $rb_ok = 1 ]; then
  rbf_m=$(median "${rbf_t[@]}")
  printf '  runbook --forks %d: %s ms, CPU %s ms   (runs: %s)\n' $N "$rbf_m" "$(median "${rbf_t_cpu[@]}")" "${rbf_t[*]}"
  printf '  ratio runbook / parallel-ssh: %s (target <= 1)   runbook / floor: %s (target <= 1.05)   runbook / ansible: %s\n' \
    "$(div "$rbf_m" "$pssh_m")" "$(div "$rbf_m" "$floor_m")" "$(div "$rbf_m" "$ansible_m")"
  pssh2_m=$(median "${pssh2_t[@]}"); rbf2_m=$(median "${rbf2_t[@]}")
  printf '  with KexAlgorithms curve25519-sha256 for all: parallel-ssh %s ms (CPU %s ms), floor %s ms (CPU %s ms), runbook %s ms (CPU %s ms): ratio %s, to the floor %s (target <= 1.3)\n' \
    "$pssh2_m" "$(median "${pssh2_t_cpu[@]}")" "$(median "${floor2_t[@]}")" "$(median "${floor2_t_cpu[@]}")" \
    "$rbf2_m" "$(median "${rbf2_t_cpu[@]}")" "$(div "$rbf2_m" "$pssh2_m")" "$(div "$rbf2_m" "$(median "${floor2_t[@]}")")"
else
  echo "  runbook --forks $N: not available yet (target: no slower than parallel-ssh, $pssh_m ms)"
fi

fi

# ---- 2. 200 steps on one warm host --------------------------------------------------------
if section 2; then
echo "== 2. $STEPS trivial steps on one warm host (median of $RUNS; $(load))"
h0="rbtest@$(addr 0)"; p0=${port_of[0]}
ssh -F "$work/ssh_config" -p "$p0" -M -S "$work/cm" -fN "$h0"
loop() { for _ in $(seq $STEPS); do ssh -F "$work/ssh_config" -p "$p0" -S "$work/cm" "$h0" true; done; }
mkdir -p "$work/cp-warm"
ansible_play() { ANSIBLE_SSH_CONTROL_PATH_DIR=$work/cp-warm "$venv/bin/ansible-playbook" -i "$work/hosts.ini" "$work/play$1.yml"; }
ansible_play 1 > /dev/null   # warms its ControlPersist master
rb1_t=(); rbn_t=(); loop_t=(); an1_t=(); ann_t=()
for _ in $(seq "$RUNS"); do
  timed rb1_t rb "$work/steps1-app.yaml" --target "app=$h0:$p0"
  timed rbn_t rb "$work/steps$((STEPS + 1))-app.yaml" --target "app=$h0:$p0"
  timed loop_t loop
  timed an1_t ansible_play 1
  timed ann_t ansible_play $((STEPS + 1))
done
rb_step=$(div $(( $(median "${rbn_t[@]}") - $(median "${rb1_t[@]}") )) $STEPS)
loop_step=$(div "$(median "${loop_t[@]}")" $STEPS)
an_step=$(div $(( $(median "${ann_t[@]}") - $(median "${an1_t[@]}") )) $STEPS)
printf '  ssh loop over a ControlMaster: %s ms/step\n' "$loop_step"
printf '  ansible-playbook, command + pipelining, warm ControlPersist: %s ms/step\n' "$an_step"
printf '  runbook: %s ms/step\n' "$rb_step"
printf '  ratio runbook / ssh loop: %s (target <= 0.5)   ansible / runbook: %sx faster (target >= 30)\n' \
  "$(div "$rb_step" "$loop_step")" "$(div "$an_step" "$rb_step" '%.1f')"

fi

# ---- 3. the first command on a fresh host -------------------------------------------------
if section 3; then
echo "== 3. the first command on a fresh host (median of $RUNS; $(load))"
ssh1_t=(); rbfirst_t=()
for r in $(seq "$RUNS"); do
  i=$((10 + r)); h="rbtest@$(addr $i)"; p=${port_of[$i]}
  timed ssh1_t ssh -F "$work/ssh_config" -p "$p" "$h" true
  timed rbfirst_t rb "$work/steps1-app.yaml" --target "app=$h:$p"
done
ssh1_m=$(median "${ssh1_t[@]}"); rbfirst_m=$(median "${rbfirst_t[@]}")
printf '  one ssh host true: %s ms   (runs: %s)\n' "$ssh1_m" "${ssh1_t[*]}"
printf '  runbook run, one step: %s ms   (runs: %s)\n' "$rbfirst_m" "${rbfirst_t[*]}"
printf '  ratio runbook / ssh: %s (target <= 1.1)\n' "$(div "$rbfirst_m" "$ssh1_m")"
fi
