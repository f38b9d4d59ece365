#!/usr/bin/env bash
# Instructions per request of the feature apps (valgrind callgrind, in-process, one keep-alive
# channel, GET / with a Bearer token): (Ir of 12000 requests - Ir of 2000) / 10000, with address
# randomisation off and time frozen. Usage: bench/instructions_features.sh [plain request-id ...]
set -euo pipefail
cd "$(dirname "$0")/.."
ir() {
  PYTHONHASHSEED=0 setarch -R valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    python bench/features_inprocess.py --run "$1" "$2" 2>&1 | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
for mode in "${@:-plain jwt request-id metrics}"; do
  for m in $mode; do
    a=$(ir "$m" 2000)
    b=$(ir "$m" 12000)
    echo "$m: $(( (b - a) / 10000 )) instructions per request"
  done
done
