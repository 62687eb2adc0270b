# The audit host's side of a run's mirror (design §19): $1 the directory, $2 the run id.
# Nothing but sh and coreutils. Frames on stdin: `a N` then N bytes, appended to the trail;
# `f N NAME` then N bytes, the run's output file NAME. Each is answered on stdout: `ok SIZE`
# (the trail's size after it), `ok`. GNU `head -c N` reads no more than N bytes from a pipe,
# and `read` one byte at a time: the next frame's line is left where it is.
umask 027
cd "$1" || exit 3
run=$2
mkdir -p "$run" || exit 3
: >> "$run.jsonl" || exit 3
size=$(wc -c < "$run.jsonl") || exit 3
echo "size $size"
while IFS=' ' read -r kind n name; do
  case $kind in
    a)
      head -c "$n" >> "$run.jsonl" || exit 4
      size=$((size + n))
      echo "ok $size" ;;
    f)
      case $name in ''|.*|*/*) exit 5 ;; esac
      head -c "$n" > "$run/.$name.part" && mv -f "$run/.$name.part" "$run/$name" || exit 4
      echo ok ;;
    *) exit 5 ;;
  esac
done
