# The remote side of the host lease (src/lease.rs has the why): POSIX sh, run by the login
# shell as `sh -c SCRIPT rb-lease HOLDER_JSON take|break BASE_DIR`.
# Every outcome is one `RBLEASE <word> ...` line on stdout; `locked`, `broken`, `reclaimed`,
# `dead` and `held` are followed by a holder line (the previous, displaced or current holder;
# empty if none), and may come after `RBLEASE stopped PGID...` (the process groups a dead
# previous holder left running, stopped before the take). The exit code stays 0, so that
# nothing is lost to how the mux reports 127 or 255. Then, once the lease is held, it lasts
# until stdin ends. What the holder writes there on the way: an empty line, its heartbeat (the
# lease file's time is set anew: a holder silent for longer than `quiet` below is taken for
# dead, its connection gone even if sshd has not noticed); `+PGID` and `-PGID`, a step's
# process group started and ended, kept on the lease file's second line (`running
# PGID:START...`, written as a group starts and when the holder ends); `bye`, a clean
# release. A holder that ends without `bye` (killed, its connection gone, or stopped as dead)
# leaves that line for the next run, which stops those groups before it takes the host.
# Shell built-ins wherever they do: each program started costs a fleet ~2 ms of CPU per host
# (`test -O` and `-ef` are in dash, bash, ksh and busybox; the POSIX fallbacks stay).
umask 077
h=$1 mode=$2
# This run's id, out of the holder JSON (`{"run":"ID",...`; ids are letters, digits, `-`).
r=${h#*\"run\":\"} r=${r%%\"*}
# Seconds without a heartbeat after which a holder that sends them counts as dead (one every
# 5 s; a holder line without `"heartbeat"` is from a runbook that sends none, and is trusted).
quiet=30 took=
say() { printf 'RBLEASE %s\n' "$*"; }
# An answer and its holder line in one write: two small writes in a row would wait for a
# delayed ACK (~40 ms) on a connection without TCP_NODELAY, which ssh sets only for ttys.
# First in it, the login shell sshd runs commands with (`SHELL`, from the account): where it
# is `sh`, the run's steps need no `exec sh -c` of their own (one program fewer per step).
say2() { printf 'RBLEASE login %s\nRBLEASE %s %s\n%s\n' "${SHELL:-}" "$1" "$2" "$3"; }
command -v flock >/dev/null 2>&1 || { say no-flock "is not installed"; exit 0; }
# flock(1) exits 1 when the lock is taken (or the wait ran out); anything else means it does
# not work here, which must not pass for "taken".
lock() {
  flock "$@"; s=$?
  if [ "$s" -le 1 ]; then return "$s"; fi
  say no-flock "fails (exit $s)"; exit 0
}
# The start time of process $1 in clock ticks since boot (field 22 of /proc/PID/stat, after
# the parenthesised name): a pid reused since is not the recorded process. Empty without /proc.
started() {
  st=
  [ -r "/proc/$1/stat" ] || return 0
  IFS= read -r st <"/proc/$1/stat" || :
  set -- ${st##*) }
  st=${20:-}
}
# Stops the process groups `PGID:START...` that still run as recorded: TERM, then KILL for
# those still there after 3 s; says which it stopped.
stop_left() {
  alive=
  for x in "$@"; do
    g=${x%%:*} want=${x#*:}
    case $g in ''|*[!0-9]*) continue ;; esac
    started "$g"
    if kill -0 -"$g" 2>/dev/null && [ "$st" = "$want" ]; then
      kill -TERM -"$g" 2>/dev/null && alive="$alive $g"
    fi
  done
  [ -n "$alive" ] || return 0
  say stopped $alive
  i=0
  while [ "$i" -lt 30 ]; do
    still=
    for g in $alive; do kill -0 -"$g" 2>/dev/null && still=1; done
    [ -n "$still" ] || return 0
    sleep 0.1 2>/dev/null || sleep 1
    i=$((i+1))
  done
  for g in $alive; do kill -KILL -"$g" 2>/dev/null; done
}
# Whether path $1 is the file open on fd 9: `test -ef` on /dev/fd/9 where the shell has it,
# else the inode numbers `ls -di` gives.
same() {
  if [ -e /dev/fd/9 ]; then [ "$1" -ef /dev/fd/9 ]; return; fi
  set -- "$(ls -di "$1")" "$(ls -diL /dev/fd/9 2>/dev/null)"
  [ "${1%% *}" = "${2%% *}" ]
}
u=
if [ -r /proc/self/status ]; then
  # Real, effective, saved and file-system ids: the effective one, as `id -u` says.
  while read -r k _ e _; do [ "$k" = Uid: ] && { u=$e; break; }; done </proc/self/status
fi
[ -n "$u" ] || u=$(id -u) || { say unsafe "cannot tell the user id"; exit 0; }
# The host may move the lease elsewhere (a private /tmp per service, a test's own sshd):
# RUNBOOK_LEASE_BASE in the session's environment, e.g. from sshd_config's SetEnv.
d=${RUNBOOK_LEASE_BASE:-$3}/runbook-lease-$u
f=$d/lease
[ -d "$d" ] || mkdir "$d" 2>/dev/null
if [ -L "$d" ] || [ ! -d "$d" ]; then say unsafe "$d is a symbolic link or not a directory"; exit 0; fi
if ! [ -O "$d" ] 2>/dev/null; then
  set -- $(ls -ldn "$d")
  if [ "$3" != "$u" ]; then say unsafe "$d belongs to uid $3, not to uid $u"; exit 0; fi
fi
chmod 700 "$d" || { say unsafe "cannot make $d private"; exit 0; }
n=0
while :; do
  n=$((n+1))
  : >>"$f" || { say unsafe "cannot create $f"; exit 0; }
  exec 9<>"$f"
  if lock -n 9; then
    # The flock is on the file in place, not on one a break has just displaced: `lease`
    # still names the file open on fd 9 (`-ef`: the same device and inode; a generation is
    # never reused while it is open).
    if same "$f"; then
      prev=; left=; IFS= read -r prev <&9 || :; IFS= read -r left <&9 || :
      # Another run's commands a dead holder left running: stopped before anything of ours
      # runs beside them (this run's own, after a resume, are the resume's to judge).
      case $prev in *\"run\":\"$r\"*) left= ;; esac
      case $left in running\ *) stop_left ${left#running} ;; esac
      printf '%s %s\n' "$$" "$h" >"$f"
      answer=${took:-locked} who=${prev#* }
      break
    fi
  else
    # The holder line counts only while its shell lives; else the winner has not written yet.
    cur=; l=; IFS= read -r l <&9 || :
    p=${l%% *}
    case $p in ''|*[!0-9]*) ;; *) kill -0 "$p" 2>/dev/null && cur=${l#* } ;; esac
    # This very process through another name of the host: one lease serves both.
    if [ -n "$cur" ] && [ "$cur" = "$h" ]; then say shared "$p $f"; exit 0; fi
    # This run's earlier process (a resume after a dead link), or a holder whose heartbeat
    # stopped: its shell is stopped, which lets go of the flock, and the next turn takes it.
    if [ -n "$cur" ]; then
      case $cur in *\"run\":\"$r\"*) gone=reclaimed ;; *) gone= ;; esac
      if [ -z "$gone" ]; then
        case $cur in *\"heartbeat\":*)
          if t=$(stat -L -c %Y "$f" 2>/dev/null) && [ $(($(date +%s) - t)) -gt "$quiet" ]; then gone=dead; fi
        esac
      fi
      if [ -n "$gone" ]; then
        kill -TERM "$p" 2>/dev/null; took=$gone
        exec 9>&-
        sleep 0.1 2>/dev/null || sleep 1
        continue
      fi
    fi
    if [ "$mode" != break ]; then
      if [ -n "$cur" ]; then say2 held "$f" "$cur"; exit 0; fi
      if [ "$n" -ge 20 ]; then say held-unknown "$f"; exit 0; fi
    elif [ -n "$cur" ] || [ "$n" -ge 20 ]; then
      # --break-lock: a new generation renamed over the held one, one breaker at a time;
      # the displaced run keeps its flock on the old file, which keeps a second name.
      exec 8>>"$d/break"
      lock -w 10 8 || { say unsettled; exit 0; }
      if same "$f" && ! lock -n 9; then
        t=$d/lease.new-$$
        rm -f "$t"
        exec 7>"$t"
        lock -n 7 || { say unsettled; exit 0; }
        printf '%s %s\n' "$$" "$h" >&7
        ln "$f" "$f.broken-$(date -u +%Y%m%dT%H%M%SZ)-$$" 2>/dev/null
        mv -f "$t" "$f" || { say unsafe "cannot replace $f"; exit 0; }
        exec 9>&7 7>&- 8>&-
        answer=broken who=$cur
        break
      fi
      exec 8>&-
    fi
  fi
  exec 9>&-
  if [ "$n" -ge 40 ]; then say unsettled; exit 0; fi
  sleep 0.1 2>/dev/null || sleep 1
done
# Displaced generations whose runs have ended.
for b in "$f".broken-*; do
  if [ -f "$b" ]; then flock -n "$b" rm -f "$b"; fi
done
say2 "$answer" "$$ $f" "$who"
# What runs is kept in the file: written as a group starts (a write, no process), so that
# even a holder killed outright leaves it; a group that ended is dropped from the list at
# once, and from the file at the next write (a step's cost), or when the holder ends without
# `bye` (its connection gone, or stopped as dead).
running= clean=
keep() {
  if same "$f"; then printf '%s %s\nrunning%s\n' "$$" "$h" "$running" >"$f"; fi
}
trap 'keep; exit 0' TERM HUP
while IFS= read -r l; do
  case $l in
    bye) clean=1 ;;
    +*) started "${l#+}"; running="$running ${l#+}:$st" ;;
    -*)
      k=
      for x in $running; do [ "${x%%:*}" = "${l#-}" ] || k="$k $x"; done
      running=$k
      ;;
    *) touch -c /dev/fd/9 2>/dev/null || { same "$f" && touch -c "$f"; } ;;
  esac
  case $l in +*) keep ;; esac
done
# A clean release names nobody (unless a break made the file another run's).
if [ -z "$clean" ]; then keep; elif same "$f"; then : >"$f"; fi
