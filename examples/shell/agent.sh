#!/bin/sh
# A batch agent in plain shell: each round it calls another agent through the
# sidecar's /call/, asks a model through the sidecar's OpenAI-compatible
# endpoint, then reports with `sidecar heartbeat`. The sidecar that runs it
# sets SIDECAR_ADDR, SIDECAR_AGENT_ID and SIDECAR_BIN (and SIDECAR_TOKEN
# when its control API requires one). Needs curl.
#
#   EVERY   seconds between rounds (default 30)
#   MODEL   a model of the sidecar's gateway (default: none)
#   PEER    an upstream of the sidecar to call each round (default: none)
#
# From cron instead, without the loop: one heartbeat per run, e.g.
#   */5 * * * * /path/to/job && sidecar heartbeat -q -note "nightly index done"
set -u

SIDECAR_ADDR="${SIDECAR_ADDR:-http://127.0.0.1:7070}"
SIDECAR_BIN="${SIDECAR_BIN:-sidecar}"
EVERY="${EVERY:-30}"
MODEL="${MODEL:-}"
PEER="${PEER:-}"
ID="${SIDECAR_AGENT_ID:-shell-agent}"

# post PATH BODY [HEADER]: a JSON POST to the sidecar; prints the body and,
# on its last line, the HTTP status and the model that answered, if any.
post() {
  curl -sS -m 60 -X POST -H 'Content-Type: application/json' \
    ${SIDECAR_TOKEN:+-H "X-Sidecar-Token: $SIDECAR_TOKEN"} ${3:+-H "$3"} \
    -d "$2" -w '\n%{http_code} %header{x-sidecar-model}' "$SIDECAR_ADDR$1"
}

trap 'echo "[agent $ID] SIGTERM: stopping" >&2; exit 0' TERM INT
echo "[agent $ID] a round every ${EVERY}s, reporting to $SIDECAR_ADDR" >&2

round=0
while :; do
  round=$((round + 1))
  status=ok
  note="round $round"

  if [ -n "$PEER" ]; then
    out=$(post "/call/$PEER/task" "{\"input\":\"round $round\"}" "Idempotency-Key: $ID-$round-$$")
    code=$(printf '%s' "$out" | tail -n 1 | cut -d' ' -f1)
    note="$note; $PEER answered $code"
  fi

  if [ -n "$MODEL" ]; then
    out=$(post /llm/v1/chat/completions \
      "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"summarise round $round\"}]}")
    last=$(printf '%s' "$out" | tail -n 1)
    code=${last%% *}
    if [ "$code" = 200 ]; then
      note="$note; model ${last#* } answered"
    else
      status=degraded   # the agent goes on, and says so: warning in Consul
      note="$note; model call failed ($code)"
    fi
  fi

  "$SIDECAR_BIN" heartbeat -q -status "$status" -note "$note" -progress "$round" -metric "rounds=$round" ||
    echo "[agent $ID] heartbeat failed; next round tries again" >&2
  sleep "$EVERY" &
  wait $!
done
