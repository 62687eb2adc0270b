# The audit host's side of a run's mirror (design §19): $1 the directory, $2 the run id.
# Nothing but sh and coreutils. Frames on stdin, each answered `ok` on stdout:
# - `l N` then N trail lines, appended with builtins only (no process per line: the warm path);
#   a trail line is JSON, so it holds no newline and no NUL;
# - `a N` then N bytes appended to the trail (catching up, from any byte);
# - `f N NAME` then N bytes, the run's output file NAME;
# - `t N NAME` then N lines, a small text output file NAME, with builtins only (`u`: its last
#   line has no newline there).
# GNU `head -c N` reads no more than N bytes from a pipe, and `read` one byte at a time: the
# next frame's line is left where it is.
# One writer per run: a newer one (a reconnection) takes `.<run>.writer`, and an older one
# whose frame arrives late (a stalled link) finds it taken and appends nothing.
umask 027
cd "$1" || exit 3
run=$2
frame=".$run.frame.$$"
trap 'rm -f "$frame"' EXIT
mkdir -p "$run" || exit 3
echo $$ > ".$run.writer.$$" && mv -f ".$run.writer.$$" ".$run.writer" || exit 3
: >> "$run.jsonl" || exit 3
size=$(wc -c < "$run.jsonl") || exit 3
echo "size $size"
exec 3>> "$run.jsonl" || exit 3
while IFS=' ' read -r kind n name; do
  case $kind in
    l)
      while [ "$n" -gt 0 ]; do
        IFS= read -r line || exit 4
        IFS= read -r writer < ".$run.writer"
        [ "$writer" = "$$" ] || exit 6
        printf '%s\n' "$line" >&3 || exit 4
        n=$((n - 1))
      done
      echo ok ;;
    a)
      head -c "$n" > "$frame" || exit 4
      IFS= read -r writer < ".$run.writer"
      [ "$writer" = "$$" ] || exit 6
      cat "$frame" >&3 || exit 4
      echo ok ;;
    t|u)
      case $name in ''|.*|*/*) exit 5 ;; esac
      exec 4> "$run/$name" || exit 4
      while [ "$n" -gt 0 ]; do
        IFS= read -r line || exit 4
        n=$((n - 1))
        if [ "$n" -eq 0 ] && [ "$kind" = u ]; then
          printf '%s' "$line" >&4 || exit 4
        else
          printf '%s\n' "$line" >&4 || exit 4
        fi
      done
      exec 4>&-
      echo ok ;;
    f)
      case $name in ''|.*|*/*) exit 5 ;; esac
      head -c "$n" > "$run/$name" || exit 4
      echo ok ;;
    *) exit 5 ;;
  esac
done
IFS= read -r writer < ".$run.writer"
[ "$writer" != "$$" ] || rm -f ".$run.writer"
