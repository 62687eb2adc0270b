# `runbook resume RUN --audit-host URL` (design §19), the audit host's side: $1 its directory,
# $2 the RUN asked for (a run id or the start of one). Nothing but sh and coreutils. Says
# `matches NAME...` when RUN is not exactly one run there, else `trail SIZE RUN` and SIZE
# bytes of the trail, then `file SIZE NAME` and SIZE bytes for each output file, then `end`.
# The trail's size is read first: lines a live mirror appends meanwhile are not sent.
cd "$1" || exit 3
want=$2
case $want in ''|.*|*/*) echo matches; exit 0 ;; esac
if [ -f "$want.jsonl" ]; then
  run=$want
else
  n=0
  found=
  for f in "$want"*.jsonl; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    found="$found ${f%.jsonl}"
  done
  if [ "$n" -ne 1 ]; then
    echo "matches$found"
    exit 0
  fi
  run=${found# }
fi
size=$(wc -c < "$run.jsonl") || exit 4
echo "trail $size $run"
head -c "$size" "$run.jsonl" || exit 4
if [ -d "$run" ] && [ ! -L "$run" ]; then
  for f in "$run"/*; do
    [ -f "$f" ] && [ ! -L "$f" ] || continue
    name=${f#"$run"/}
    case $name in .*|*'
'*) continue ;; esac
    size=$(wc -c < "$f") || exit 4
    echo "file $size $name"
    head -c "$size" "$f" || exit 4
  done
fi
echo end
