#!/usr/bin/env bash
# Instructions per request of the feature apps (valgrind callgrind, in-process, one keep-alive
# channel, GET / with a Bearer token): (Ir of 6000 requests - Ir of 1000) / 5000, with address
# randomisation off and time frozen, averaged over SEEDS hash seeds (default 4; ~6 min per mode): one process layout
# can move a count by ~1%, so a single seed cannot settle a difference of that size.
# Usage: [SEEDS=n] bench/instructions_features.sh [plain request-id ...]
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${SEEDS:-4}
ir() {
  PYTHONPATH="$PWD" PYTHONHASHSEED=$3 setarch -R valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    python bench/features_inprocess.py --run "$1" "$2" 2>&1 | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
for mode in ${@:-plain jwt request-id metrics}; do
  total=0
  for ((seed = 0; seed < seeds; seed++)); do
    a=$(ir "$mode" 1000 "$seed")
    b=$(ir "$mode" 6000 "$seed")
    total=$((total + (b - a) / 5000))
  done
  echo "$mode: $((total / seeds)) instructions per request (mean of $seeds hash seeds)"
done
