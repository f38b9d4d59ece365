#!/usr/bin/env bash
# Instructions per request, in-process (valgrind callgrind): (Ir of 3000 requests - Ir of 1000) / 2000.
# Stable on a shared machine, unlike wall-clock. Usage: bench/instructions.sh [hello|param|echo]
set -euo pipefail
cd "$(dirname "$0")/.."
request="${1:-hello}"
ir() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/inprocess.py --run "$1" "$request" "$2" 2>&1 \
    | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
for site in raw stock default; do
  a=$(PYTHONHASHSEED=0 ir "$site" 1000)
  b=$(PYTHONHASHSEED=0 ir "$site" 3000)
  echo "$request $site: $(( (b - a) / 2000 )) instructions per request"
done
