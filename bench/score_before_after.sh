#!/usr/bin/env bash
# Batch scoring before and after a change, interleaved on one machine (issue 23): the scoring
# child of bench/score_throughput.py (read + validate, build_queue, write) on one prepared
# folder, alternately with an older tree and with this checkout, ROUNDS times each.
#
#   mkdir /tmp/old && git archive <commit> | tar -x -C /tmp/old
#   .venv/bin/python bench/score_throughput.py --sizes 100000 --prepare /tmp/crm100k
#   flock /tmp/closeprob-heavy.lock bench/score_before_after.sh /tmp/old /tmp/crm100k 2
#
# Both runs use this checkout's .venv and this bench script (copied into the old tree), so
# only the closeprob code differs. Prints the load and each child's result (JSON: seconds,
# CPU seconds, peak RSS).
set -euo pipefail
old=$(realpath "$1"); folder=$(realpath "$2"); rounds=${3:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
python="$here/.venv/bin/python"
cp "$here/bench/score_throughput.py" "$old/bench/score_throughput.py"
echo "load before: $(cat /proc/loadavg)"
for round in $(seq "$rounds"); do
  (cd "$old" && PYTHONPATH="$old" "$python" bench/score_throughput.py --child "$folder" 2>/dev/null)
  echo "before $round $(cat "$folder/result.json")"
  (cd "$here" && "$python" bench/score_throughput.py --child "$folder" 2>/dev/null)
  echo "after $round $(cat "$folder/result.json")"
done
echo "load after: $(cat /proc/loadavg)"
