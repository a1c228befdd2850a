#!/usr/bin/env bash
# The README's "Webhook ingestion: what is accepted, ignored, kept or refused" session, replayed
# against a fresh aiops-service on an ephemeral 127.0.0.1 port (GitHub and PagerDuty signed,
# the other sources left unauthenticated to show the warning). Prints each command and its answer.
# Usage: service/scripts/webhook-demo.sh
# Needs: curl, jq, openssl, python3; builds target/release/aiops-service (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in curl jq openssl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed" >&2; exit 1; }
done
cargo build --release -q -p aiops-service
BIN=target/release/aiops-service
FIX=service/tests/fixtures
OUT=$(mktemp -d)
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$OUT"' EXIT

env -u REDIS_URL -u AIOPS_LLM_BASE_URL -u AIOPS_REQUIRE_SIGNATURES \
  -u AIOPS_WEBHOOK_SECRET_GITLAB -u AIOPS_WEBHOOK_SECRET_ALERTMANAGER -u AIOPS_WEBHOOK_SECRET_DATADOG \
  AIOPS_WEBHOOK_SECRET_GITHUB=gh-demo-secret AIOPS_WEBHOOK_SECRET_PAGERDUTY=pd-demo-secret \
  "$BIN" --bind 127.0.0.1:0 --llm-latency-ms 5 >"$OUT/stdout" 2>"$OUT/stderr" &
PID=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$OUT/stdout" 2>/dev/null && break
  sleep 0.1
done
URL=$(sed -n 's/^aiops-service listening on //p' "$OUT/stdout")
[ -n "$URL" ] || { echo "error: service did not start:" >&2; cat "$OUT/stderr" >&2; exit 1; }

hmac() { openssl dgst -sha256 -hmac "$1" -hex < "$2" | sed 's/^.*= //'; }
show() { echo "\$ $*"; }

echo "\$ $BIN --bind 127.0.0.1:0   # GitHub and PagerDuty secrets set"
cat "$OUT/stderr"

show "curl -s \$URL/health | jq -c '{status, warnings}'"
curl -s "$URL/health" | jq -c '{status, warnings}'

# A GitHub delivery sent form-encoded (hooks created through the REST API), signed over the form body.
python3 -c 'import sys, urllib.parse; sys.stdout.write("payload=" + urllib.parse.quote_plus(open(sys.argv[1]).read()))' \
  "$FIX/github_push.json" > "$OUT/form"
show "curl -s \$URL/api/v1/webhooks/github -H 'Content-Type: application/x-www-form-urlencoded' -H 'X-GitHub-Event: push' -H 'X-GitHub-Delivery: demo-form-1' -H \"X-Hub-Signature-256: sha256=\$(hmac of the form body)\" --data-binary @form"
curl -s "$URL/api/v1/webhooks/github" -H 'Content-Type: application/x-www-form-urlencoded' \
  -H 'X-GitHub-Event: push' -H 'X-GitHub-Delivery: demo-form-1' \
  -H "X-Hub-Signature-256: sha256=$(hmac gh-demo-secret "$OUT/form")" --data-binary @"$OUT/form"; echo

# check_run whose app has no slug: accepted.
F="$FIX/schema/github/check_run.required.json"
show "curl -s \$URL/api/v1/webhooks/github -H 'X-GitHub-Event: check_run' ... --data-binary @$F"
curl -s "$URL/api/v1/webhooks/github" -H 'Content-Type: application/json' -H 'X-GitHub-Event: check_run' \
  -H 'X-GitHub-Delivery: demo-check-1' -H "X-Hub-Signature-256: sha256=$(hmac gh-demo-secret "$F")" \
  --data-binary @"$F"; echo

# An event nobody models: 200 ignored, counted, kept.
F="$FIX/schema/github/star.created.json"
show "curl -s \$URL/api/v1/webhooks/github -H 'X-GitHub-Event: star' ... --data-binary @$F"
curl -s "$URL/api/v1/webhooks/github" -H 'Content-Type: application/json' -H 'X-GitHub-Event: star' \
  -H 'X-GitHub-Delivery: demo-star-1' -H "X-Hub-Signature-256: sha256=$(hmac gh-demo-secret "$F")" \
  --data-binary @"$F"; echo

for name in incident.role.assigned.full service.updated.full; do
  F="$FIX/schema/pagerduty/$name.json"
  show "curl -s \$URL/api/v1/webhooks/pagerduty -H \"X-PagerDuty-Signature: v1=...\" --data-binary @$F"
  curl -s "$URL/api/v1/webhooks/pagerduty" -H 'Content-Type: application/json' \
    -H "X-PagerDuty-Signature: v1=$(hmac pd-demo-secret "$F")" --data-binary @"$F"; echo
done

F="$FIX/schema/datadog/default_template.json"
show "curl -s \$URL/api/v1/webhooks/datadog --data-binary @$F   # Datadog's default template"
curl -s "$URL/api/v1/webhooks/datadog" -H 'Content-Type: application/json' --data-binary @"$F"; echo

show "curl -s \$URL/api/v1/webhooks/github -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' -H \"X-Hub-Signature-256: ...\" -d '{\"oops'"
printf '{"oops' > "$OUT/bad"
curl -s "$URL/api/v1/webhooks/github" -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
  -H "X-Hub-Signature-256: sha256=$(hmac gh-demo-secret "$OUT/bad")" --data-binary @"$OUT/bad"; echo

show "curl -s \$URL/api/v1/webhooks/status | jq -c '.sources.github, .sources.pagerduty, .unmodelled'"
curl -s "$URL/api/v1/webhooks/status" | jq -c '.sources.github, .sources.pagerduty, .unmodelled'

show "curl -s \$URL/api/v1/webhooks/unmodelled | jq -c '.events[] | {source, kind, delivery_id, reason, body_keys: (.body | keys)}'"
curl -s "$URL/api/v1/webhooks/unmodelled" | jq -c '.events[] | {source, kind, delivery_id, reason, body_keys: (.body | keys)}'

show "curl -s \$URL/metrics | grep -E '^aiops_webhooks_(total|unmodelled)' | grep -v ' 0\$'"
curl -s "$URL/metrics" | grep -E '^aiops_webhooks_(total|unmodelled)' | grep -v ' 0$'

show "AIOPS_WEBHOOK_SECRET_GITHUB=x $BIN --require-signatures; echo \"exit \$?\""
set +e
env -u AIOPS_WEBHOOK_SECRET_GITLAB -u AIOPS_WEBHOOK_SECRET_PAGERDUTY -u AIOPS_WEBHOOK_SECRET_ALERTMANAGER \
  -u AIOPS_WEBHOOK_SECRET_DATADOG -u AIOPS_REQUIRE_SIGNATURES AIOPS_WEBHOOK_SECRET_GITHUB=x \
  "$BIN" --bind 127.0.0.1:0 --require-signatures 2>&1
echo "exit $?"
