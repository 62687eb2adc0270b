# `runbook watch --audit-host`'s side there (design §19): $1 the audit host's directory, $2 the
# trail's file name, $3 the byte to start from (1: the first). Read-only: it writes nothing.
# The trail is followed by `tail -f` (inotify with GNU coreutils; else polled every 0.2 s where
# `-s` is understood). A watchdog holds the channel's stdin: when the watcher hangs up (or the
# connection drops) it reads end of file and ends the tail, which would otherwise linger until
# the trail grew again.
cd -- "$1" || exit 3
if ! [ -f "$2" ] || ! [ -r "$2" ]; then
  printf 'cannot read %s/%s there\n' "$1" "$2" >&2
  exit 4
fi
set -- "$2" "$3"
exec 3<&0
{ cat <&3 >/dev/null 2>&1; kill $$ 2>/dev/null; } </dev/null >/dev/null 2>&1 &
exec 3<&-
if tail -s 0.2 -c +1 -- /dev/null >/dev/null 2>&1; then
  exec tail -s 0.2 -c "+$2" -f -- "$1" </dev/null
fi
exec tail -c "+$2" -f -- "$1" </dev/null
