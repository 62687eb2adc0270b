# The unattended policy's state on the team's audit host (design §20): $1 its directory, $2
# what to do. Nothing but sh and coreutils; every value is a positional argument or a line of
# stdin. Frames on stdout: `KIND SIZE NAME` then SIZE bytes, or a bare `KIND [WORD]` line.
#   pause      stdin the pause record: written whole as `pause.json` (never half a pause)
#   unpause    `pause.json` removed: says `removed` or `none`
#   admit      under the lock `unattended/lock.d` (one admission at a time, every machine):
#              the pause (`pause SIZE` and its bytes, `pause-unreadable` when it
#              cannot be read), the ledger (`ledger SIZE` and `unattended/runs.jsonl`), `ready`;
#              then reads `last RUN...` and sends each run's last trail line (`trail SIZE RUN`,
#              or `missing RUN`), `ready`; then reads `admit` and the ledger's new line (appended,
#              `admitted`) or `refuse` (`refused`).
umask 027
cd "$1" || exit 3
verb=$2
case $verb in
  pause)
    tmp=".pause.json.$$"
    trap 'rm -f "$tmp"' EXIT
    cat > "$tmp" && mv -f "$tmp" pause.json || exit 4
    echo paused ;;
  unpause)
    if [ -e pause.json ] || [ -L pause.json ]; then
      rm -f pause.json || exit 4
      echo removed
    else
      echo none
    fi ;;
  admit)
    mkdir -p unattended || exit 3
    [ -d unattended ] && [ ! -L unattended ] || { echo "unattended in $1 is not a directory" >&2; exit 3; }
    lock=unattended/lock.d
    waited=0
    # A lock older than a minute is a dead admission's: an exchange lasts seconds.
    until mkdir "$lock" 2>/dev/null; do
      age=$(( $(date +%s) - $(stat -c %Y "$lock" 2>/dev/null || date +%s) ))
      if [ "$age" -gt 60 ]; then rmdir "$lock" 2>/dev/null; continue; fi
      waited=$((waited + 1))
      [ "$waited" -le 200 ] || { echo "the lock $1/$lock is held by another admission for 20 s" >&2; exit 6; }
      sleep 0.1
    done
    trap 'rmdir "$lock" 2>/dev/null' EXIT
    trap 'exit 1' HUP INT TERM PIPE
    send() {
      size=$(wc -c < "$2") || exit 4
      echo "$1 $size $3"
      head -c "$size" "$2" || exit 4
    }
    if [ -e pause.json ] || [ -L pause.json ]; then
      if [ -f pause.json ] && [ -r pause.json ]; then send pause pause.json pause.json; else echo pause-unreadable; fi
    fi
    if [ -f unattended/runs.jsonl ]; then send ledger unattended/runs.jsonl runs.jsonl; fi
    echo ready
    IFS= read -r asked || exit 0
    # Split into words, never globbed.
    set -f
    set -- $asked
    [ "$1" = last ] || exit 5
    shift
    for run; do
      case $run in ''|.*|*/*) echo "missing $run"; continue ;; esac
      if [ -f "$run.jsonl" ] && [ ! -L "$run.jsonl" ]; then
        tail -n 1 -- "$run.jsonl" > "unattended/.last.$$" || exit 4
        send trail "unattended/.last.$$" "$run"
        rm -f "unattended/.last.$$"
      else
        echo "missing $run"
      fi
    done
    echo ready
    IFS= read -r verdict || exit 0
    case $verdict in
      admit)
        IFS= read -r line || exit 5
        printf '%s\n' "$line" >> unattended/runs.jsonl || exit 4
        echo admitted ;;
      *) echo refused ;;
    esac ;;
  *) echo "unknown request $verb" >&2; exit 5 ;;
esac
echo end
