# Sourced by the benchmarks (bench-run.sh, bench-lost.sh): a real sshd on 127.0.0.1 for the
# login user `rbtest` (shell /bin/sh, no rc files: start-up files would distort the timing),
# with a throwaway host key and client key, all under "$work".
# Sets `port` and `dest` (rbtest@127.0.0.1:PORT) and writes $work/ssh_config (key, known_hosts,
# strict host keys, BatchMode); the sshd's pid is in $work/sshd.pid.
loopback_sshd() {
  mkdir -p /run/sshd
  id rbtest >/dev/null 2>&1 || useradd -m -s /bin/sh rbtest
  usermod -p '*' rbtest
  ssh-keygen -q -t ed25519 -N '' -f "$work/hostkey"
  ssh-keygen -q -t ed25519 -N '' -f "$work/client"
  cp "$work/client.pub" "$work/keys"; chmod 644 "$work/keys"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$work/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $work/hostkey
AuthorizedKeysFile $work/keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $work/sshd.pid
EOF
  /usr/sbin/sshd -f "$work/sshd_config"
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$work/hostkey.pub")" > "$work/known_hosts"
  printf 'Host *\n  IdentityFile %s\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n  BatchMode yes\n' \
    "$work/client" "$work/known_hosts" > "$work/ssh_config"
  dest="rbtest@127.0.0.1:$port"
  for _ in $(seq 50); do ssh -F "$work/ssh_config" -p "$port" rbtest@127.0.0.1 true 2>/dev/null && break; sleep 0.1; done
}
