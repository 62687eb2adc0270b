# The team's record (design §19), the audit host's side: $1 its directory, $2 what is asked,
# then run ids. Nothing but sh and coreutils; read-only there.
#   list            `run RUN` for each trail there
#   trails          each trail: `trail SIZE RUN` then SIZE bytes
#   runs RUN...     each run's trail as above, then `file SIZE RUN/NAME` and SIZE bytes for
#                   each of its output files; `missing RUN` for a run not there
#   outputs RUN...  the same without the trails
# then `end`. A file's size is read first: bytes a live mirror appends meanwhile are not sent.
cd -- "$1" || exit 3
what=$2
shift 2
# A run id that stays a plain file name of this directory, with its trail there.
known() {
  case $1 in ''|.*|*/*|*' '*|*'
'*) return 1 ;; esac
  [ -f "$1.jsonl" ] && [ ! -L "$1.jsonl" ]
}
send() {
  size=$(wc -c < "$1") || exit 4
  echo "$2 $((size)) $3"
  head -c "$size" "$1" || exit 4
}
files() {
  [ -d "$1" ] && [ ! -L "$1" ] || return 0
  for f in "$1"/*; do
    [ -f "$f" ] && [ ! -L "$f" ] || continue
    name=${f#"$1"/}
    case $name in .*|*'
'*) continue ;; esac
    send "$f" file "$1/$name"
  done
}
case $what in
  list)
    for f in *.jsonl; do
      run=${f%.jsonl}
      if known "$run"; then echo "run $run"; fi
    done ;;
  trails)
    # Every size from one `wc` (a process per file is what hundreds of runs would cost).
    set -- *.jsonl
    if [ -f "$1" ]; then
      for f; do
        if [ ! -r "$f" ]; then echo "cannot read $f" >&2; exit 4; fi
      done
      wc -c -- "$@" | while read -r size f; do
        run=${f%.jsonl}
        [ "$f" != "$run" ] && known "$run" || continue
        echo "trail $size $run"
        head -c "$size" "$f" || exit 4
      done || exit 4
    fi ;;
  runs|outputs)
    for run in "$@"; do
      if ! known "$run"; then echo "missing $run"; continue; fi
      if [ "$what" = runs ]; then send "$run.jsonl" trail "$run"; fi
      files "$run"
    done ;;
  *) echo "unknown request $what" >&2; exit 2 ;;
esac
echo end
