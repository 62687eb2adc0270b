# The audit host's side of a run's mirror (design §19): $1 the directory, $2 the run id.
# Nothing but sh and coreutils. Frames on stdin: `a N` then N bytes, appended to the trail;
# `f N NAME` then N bytes, the run's output file NAME. Each is answered on stdout: `ok SIZE`
# (the trail's size after it), `ok`. GNU `head -c N` reads no more than N bytes from a pipe,
# and `read` one byte at a time: the next frame's line is left where it is.
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
while IFS=' ' read -r kind n name; do
  case $kind in
    a)
      head -c "$n" > "$frame" || exit 4
      IFS= read -r writer < ".$run.writer"
      [ "$writer" = "$$" ] || exit 6
      cat "$frame" >> "$run.jsonl" || exit 4
      size=$((size + n))
      echo "ok $size" ;;
    f)
      case $name in ''|.*|*/*) exit 5 ;; esac
      head -c "$n" > "$run/.$name.part" && mv -f "$run/.$name.part" "$run/$name" || exit 4
      echo ok ;;
    *) exit 5 ;;
  esac
done
IFS= read -r writer < ".$run.writer"
[ "$writer" != "$$" ] || rm -f ".$run.writer"
