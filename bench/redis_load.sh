#!/usr/bin/env bash
# SPEC §12 r2: one process (`python app.py`), `wrk -t2 -c500 -d60s` (wrk's default 2 s timeout)
# against a Redis-rate-limited route whose limit is never reached, Redis healthy.
# Pass: zero non-2xx responses (no 503) and zero socket errors.
#
#   bench/redis_load.sh            # the full 60 s run
#   DURATION=10s bench/redis_load.sh
#
# Starts its own redis-server and app server on free 127.0.0.1 ports; stops both at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-60s}"
PY="${PYTHON:-python}"
WORK="$(mktemp -d)"
ulimit -n 4096 2>/dev/null || true

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT="$(free_port)"
APP_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
  --logfile "$WORK/redis.log" &
REDIS_PID=$!
cleanup() {
  [ -n "${APP_PID:-}" ] && kill "$APP_PID" 2>/dev/null || true
  kill "$REDIS_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

cat > "$WORK/app.py" <<PYAPP
import os
from cello_twisted import App, RateLimitConfig
from cello_twisted.stores import RedisRateLimitStore

app = App()
store = RedisRateLimitStore("redis://127.0.0.1:${REDIS_PORT}/0")
app.enable_rate_limit(RateLimitConfig(10**9, 2, store=store))  # never reached

@app.get("/")
def hello(request):
    return {"message": "Hello, World!"}

if __name__ == "__main__":
    app.env = "production"
    app.run(host="127.0.0.1", port=${APP_PORT})
PYAPP
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$WORK/app.py" >"$WORK/app.log" 2>&1 &
APP_PID=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$APP_PORT/" >/dev/null 2>&1 && break
  sleep 0.1
done

echo "wrk -t2 -c500 -d$DURATION http://127.0.0.1:$APP_PORT/ (Redis-rate-limited route)"
OUT="$(wrk -t2 -c500 -d"$DURATION" "http://127.0.0.1:$APP_PORT/")"
echo "$OUT"
if echo "$OUT" | grep -Eq "Non-2xx or 3xx responses|Socket errors"; then
  echo "FAIL: non-2xx responses or socket errors (see above; app log: $WORK/app.log)"
  grep -i "unavailable" "$WORK/app.log" | head -3 || true
  exit 1
fi
echo "PASS: zero 503s, zero socket errors"
