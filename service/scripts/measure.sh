#!/usr/bin/env bash
# Hot-path measurement of aiops-service: service pinned to CPU 0, wrk pinned to CPU 1.
#   GET /health, then signed GitHub pull_request POSTs with unique delivery ids (202) and with one
#   repeated delivery id (200 duplicates).
# Usage: service/scripts/measure.sh [duration, default 10s] [connections, default 32]
# Needs: wrk, taskset, openssl; builds target/release/aiops-service if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION="${1:-10s}"
CONNECTIONS="${2:-32}"
PORT="${AIOPS_MEASURE_PORT:-18080}"
BIN=target/release/aiops-service
BODY=service/tests/fixtures/github_pull_request.json
export AIOPS_WEBHOOK_SECRET_GITHUB="${AIOPS_WEBHOOK_SECRET_GITHUB:-measure-secret}"

for tool in wrk taskset openssl; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (apt-get install -y wrk util-linux openssl)" >&2; exit 1; }
done
[ -x "$BIN" ] || cargo build --release -p aiops-service

taskset -c 0 "$BIN" --bind "127.0.0.1:$PORT" > /tmp/aiops-measure.out 2> /tmp/aiops-measure.err &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" /tmp/aiops-measure.out 2>/dev/null && break
  sleep 0.1
done
grep -q "listening on" /tmp/aiops-measure.out || { echo "error: service did not start:" >&2; cat /tmp/aiops-measure.err >&2; exit 1; }
URL="http://127.0.0.1:$PORT"

SIG="sha256=$(openssl dgst -sha256 -hmac "$AIOPS_WEBHOOK_SECRET_GITHUB" -hex < "$BODY" | sed 's/^.*= *//')"

echo "== GET /health"
taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$URL/health"
echo "== POST /api/v1/webhooks/github (signed pull_request, unique delivery ids -> 202)"
AIOPS_WRK_BODY="$BODY" AIOPS_WRK_SIGNATURE="$SIG" AIOPS_WRK_DELIVERY=unique \
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s service/scripts/wrk_github_pr.lua "$URL"
echo "== POST /api/v1/webhooks/github (signed pull_request, one delivery id -> 200 duplicate)"
AIOPS_WRK_BODY="$BODY" AIOPS_WRK_SIGNATURE="$SIG" AIOPS_WRK_DELIVERY=same \
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s service/scripts/wrk_github_pr.lua "$URL"
echo "== webhook counters"
curl -s "$URL/api/v1/webhooks/status" || true
echo
