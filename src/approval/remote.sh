# The approvals spool on the team's audit host (design §19): $1 the audit host's directory,
# $2 what to do, then its values. Nothing but sh and coreutils; every value is a positional
# argument. The spool is `$1/approvals`, made setgid, sticky and group-writable (the team shares
# its group; nobody removes another's file); files are written 0640 and never over another.
# Frames on stdout: `KIND SIZE NAME` then SIZE bytes; `now SECONDS` is the audit host's clock.
# A request's heartbeat, `NAME.alive`, is touched by its run at every look while it waits and
# removed when it stops waiting: `list` and `get` give its age, the approver's side judges.
# Every file it makes is new (`set -C`: never through a name someone planted, a link included).
umask 027
set -C
cd "$1" || exit 3
if [ ! -d approvals ]; then
  mkdir approvals 2>/dev/null && chmod 3770 approvals
fi
[ -d approvals ] && [ ! -L approvals ] || { echo "no approvals directory in $1" >&2; exit 3; }
cd approvals || exit 3
verb=$2
shift 2
# A request's name: no path, nothing hidden.
named() {
  case $1 in ''|.*|*/*) echo "not a request name: $1" >&2; exit 5 ;; esac
}
# `KIND SIZE NAME` and the file's bytes, at most $3 of them (a planted giant is cut, and then
# fails to verify).
send() {
  size=$(wc -c < "$2") || exit 4
  [ "$size" -le "$3" ] || size=$3
  echo "$1 $size $2"
  head -c "$size" "$2" || exit 4
}
# The age in seconds of NAME's heartbeat, `-` when there is none.
alive() {
  if [ -f "$1.alive" ]; then
    echo $(( $(date +%s) - $(stat -c %Y "$1.alive") ))
  else
    echo -
  fi
}
case $verb in
  request)
    # $1 the name's stem; stdin the request. Says `name NAME`.
    named "$1"
    tmp=".$1.$$.partial"
    trap 'rm -f "$tmp"' EXIT
    cat > "$tmp" || exit 4
    n=1
    while :; do
      if [ "$n" -eq 1 ]; then name="$1.json"; else name="$1.$n.json"; fi
      ln "$tmp" "$name" 2>/dev/null && break
      n=$((n + 1))
      [ "$n" -le 100 ] || { echo "every name of $1 is taken" >&2; exit 4; }
    done
    rm -f "$name.alive"
    : > "$name.alive" || exit 4
    echo "name $name" ;;
  poll)
    # $1 the request: its heartbeat touched, then every answer beside it (a denial's reason
    # only once its signature is there: it was written whole before).
    named "$1"
    # Never made again here (`-c`): a look still under way when the run stopped waiting
    # must not bring the heartbeat back.
    touch -c "$1.alive"
    for f in "$1".sig "$1".*.sig; do
      [ -f "$f" ] && [ ! -L "$f" ] || continue
      case $f in
        *.deny.sig)
          reason=${f%.sig}
          [ -f "$reason" ] && [ ! -L "$reason" ] && send reason "$reason" 65536 ;;
      esac
      send sig "$f" 65536
    done
    echo end ;;
  done)
    # $1 the request: its run waits no more.
    named "$1"
    rm -f "$1.alive"
    echo end ;;
  list)
    echo "now $(date +%s)"
    for f in *.json; do
      [ -f "$f" ] && [ ! -L "$f" ] || continue
      echo "alive $(alive "$f") $f"
      send request "$f" 1048576
    done
    echo end ;;
  get)
    # $1 the request.
    named "$1"
    if [ -f "$1" ] && [ ! -L "$1" ]; then
      echo "alive $(alive "$1") $1"
      send request "$1" 1048576
    fi
    echo end ;;
  answer)
    # $1 the request, $2 `deny` or `approve`, $3 the armored signature, $4 a denial's reason.
    # Says `wrote NAME`, or `gone` when the request is not there.
    named "$1"
    [ -f "$1" ] && [ ! -L "$1" ] || { echo gone; exit 0; }
    tmp=".$1.answer.$$.partial"
    trap 'rm -f "$tmp"' EXIT
    printf '%s\n' "$3" > "$tmp" || exit 4
    n=1
    while [ "$n" -le 100 ]; do
      if [ "$n" -eq 1 ]; then base=$1; else base="$1.$n"; fi
      n=$((n + 1))
      if [ "$2" = deny ]; then
        out="$base.deny.sig"
        { [ -e "$out" ] || [ -L "$out" ]; } && continue
        # The reason first, whole, never over another's.
        (set -C; printf '%s' "$4" > "$base.deny") 2>/dev/null || continue
      else
        out="$base.sig"
      fi
      ln "$tmp" "$out" 2>/dev/null || continue
      echo "wrote $out"
      exit 0
    done
    echo "every name beside $1 is taken" >&2
    exit 4 ;;
  *) exit 5 ;;
esac
