#!/usr/bin/env bash
# The demo: a Consul dev agent, the example Python agent under its sidecar,
# and a webhook that prints notifications. It hangs the agent and stalls it,
# and narrates what the sidecar does about it. KEEP=1 leaves everything
# running (Ctrl-C stops it all).
set -euo pipefail
cd "$(dirname "$0")/.."

CONSUL_BIN="${CONSUL_BIN:-$(scripts/consul.sh)}"
SIDECAR=bin/sidecar
CONSUL_HTTP=127.0.0.1:18500
CONTROL=http://127.0.0.1:17070
AGENT=http://127.0.0.1:18081
logs="$(mktemp -d)"
pids=()

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
info() { printf '   %s\n' "$*"; }

cleanup() {
  trap - EXIT INT TERM
  say "stopping everything the demo started"
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  info "logs kept in $logs"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for port in 18500 18300 18301 18302 17070 18081 19090 19101 19102 19201 19202; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: port $port is in use; stop what uses it (an earlier demo?) and try again" >&2
    exit 1
  fi
done

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
check() { # prints "status|output" of the heartbeat check from the Consul agent API
  curl -fsS "http://$CONSUL_HTTP/v1/agent/checks" 2>/dev/null |
    json "next(('%s|%s' % (c['Status'], c['Output'].splitlines()[0] if c['Output'] else '')) for c in d.values() if c['ServiceID']=='writer-1' and c['Name']=='heartbeat')" 2>/dev/null || echo "absent|"
}
restarts() { curl -fsS "$CONTROL/v1/status" | json "d.get('process',{}).get('restarts',0)"; }
wait_for() { # wait_for STATUS TIMEOUT_S: waits for the heartbeat check to reach STATUS
  local want=$1 limit=$2 start=$SECONDS
  while (( SECONDS - start < limit )); do
    local c; c="$(check)"
    if [[ "${c%%|*}" == "$want" ]]; then
      info "Consul: heartbeat check is $want after $((SECONDS - start))s — ${c#*|}"
      return 0
    fi
    sleep 0.5
  done
  echo "demo: the check did not become $want within ${limit}s; see $logs" >&2
  return 1
}

say "starting a Consul dev agent (UI: http://$CONSUL_HTTP/ui/)"
"$CONSUL_BIN" agent -dev -node demo -bind 127.0.0.1 -client 127.0.0.1 \
  -http-port 18500 -dns-port -1 -grpc-port -1 -server-port 18300 -serf-lan-port 18301 -serf-wan-port 18302 \
  -hcl 'check_update_interval = "0s"' >"$logs/consul.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fsS "http://$CONSUL_HTTP/v1/status/leader" 2>/dev/null | grep -q : && break; sleep 0.2; done

say "starting a webhook that prints the sidecar's notifications"
python3 examples/python/webhook.py 19090 &
pids+=($!)

say "starting two services the agent calls through its sidecar: search and its fallback search-lite"
python3 examples/python/upstream.py search 19101 &
pids+=($!)
python3 examples/python/upstream.py search-lite 19102 &
pids+=($!)

say "starting two fake models the agent asks through its sidecar: gpt-4o and its lighter fallback gpt-4o-mini"
bin/fakellm -addr 127.0.0.1:19201 -name gpt-4o -reply "A crisp haiku from the primary model." 2>"$logs/gpt-4o.log" &
pids+=($!)
bin/fakellm -addr 127.0.0.1:19202 -name gpt-4o-mini -reply "A plainer haiku from the lighter model." 2>"$logs/gpt-4o-mini.log" &
pids+=($!)

say "starting the sidecar, which starts the example agent (examples/demo/sidecar.hcl)"
info "heartbeat every 2s; isolated after 2 missed + 1s grace, or 6s without progress"
DEMO_MODEL_KEY=demo-key-not-secret CONSUL_HTTP_ADDR=$CONSUL_HTTP "$SIDECAR" agent -config examples/demo/sidecar.hcl >"$logs/sidecar.log" 2>&1 &
pids+=($!)
wait_for passing 30

task() { # one task; prints the answer and the model that gave it
  curl -fsS -X POST -d "{\"input\":\"$1\"}" "$AGENT/task" |
    json "'%s (model %s%s)' % (d.get('output', d.get('error')), d.get('model', '?'), ', degraded' if d.get('degraded') else '')"
}
modelcalls() { curl -fsS "http://127.0.0.1:$1/_stats" | json "d['calls']"; }

say "the agent takes a task, asking gpt-4o through its sidecar"
info "$(task 'write a haiku')"

say "the agent hangs (POST /hang): no heartbeats, no answers"
curl -fsS -m 2 -X POST "$AGENT/hang" >/dev/null || true
before=$(restarts)
wait_for critical 15
info "the sidecar isolated it and restarts it (restart_on_isolation = true)"
for _ in $(seq 1 60); do [[ "$(restarts)" -gt "$before" ]] && break; sleep 0.5; done
info "restarts so far: $(restarts)"
wait_for passing 30
info "the new process heartbeats; the agent recovered without anyone touching it"

say "the agent stalls (POST /stall): heartbeats go on, but its progress stops"
curl -fsS -m 2 -X POST "$AGENT/stall" >/dev/null || true
before=$(restarts)
wait_for critical 20
for _ in $(seq 1 60); do [[ "$(restarts)" -gt "$before" ]] && break; sleep 0.5; done
wait_for passing 30
info "restarts so far: $(restarts)"

say "calls through the sidecar: GET $CONTROL/call/search/query"
call() { # one call through the sidecar; prints the status and who answered
  curl -s -o /dev/null -D - "$CONTROL/call/search/query" | python3 -c '
import sys
lines = sys.stdin.read().splitlines()
h = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if ":" in l)}
print(lines[0].split(" ", 2)[1], "from", h.get("x-sidecar-upstream", "the sidecar itself"), "(fallback)" if h.get("x-sidecar-fallback") else "")'
}
searchcalls() { curl -fsS http://127.0.0.1:19101/_calls | json "d['calls']"; }
info "$(call)"
say "search starts failing (every call answers 503)"
curl -fsS -X POST http://127.0.0.1:19101/_fail >/dev/null
before=$(searchcalls)
for i in 1 2 3 4 5 6; do info "call $i: $(call)"; done
info "of these 6 calls, $(( $(searchcalls) - before )) reached search (3 failures opened its breaker; the rest went straight to search-lite)"
curl -fsS "$CONTROL/v1/breakers" | json "'\n'.join('   breaker %s: %s, %d consecutive failures, half-open in %s' % (b['name'], b['state'], b['consecutive_failures'], b.get('half_open_in','-')) for b in d['breakers'])"
say "search recovers; after open_for (5s) one probe call closes the breaker"
curl -fsS -X POST http://127.0.0.1:19101/_heal >/dev/null
sleep 5.5
for i in 1 2; do info "call $i: $(call)"; done

say "the primary model fails (every call answers 503): the agent carries on with gpt-4o-mini"
curl -fsS -X POST -d '{"fail_next":1000000,"fail_status":503}' http://127.0.0.1:19201/_control >/dev/null
before=$(modelcalls 19201)
for i in 1 2 3 4 5 6; do info "task $i: $(task "haiku $i")"; done
info "of these 6 tasks, $(( $(modelcalls 19201) - before )) reached gpt-4o (3 failures opened its breaker; the rest went straight to gpt-4o-mini)"
curl -fsS "$CONTROL/v1/status" | json "'\n'.join('   model %s: %d calls, %d failures, %d skipped (breaker open), %d answers as a fallback' % (m['label'], m['calls'], m['failures'], m['skipped'], m['fallback_answers']) for m in d['models'])"
info "Consul's sidecar check: $(curl -fsS "http://$CONSUL_HTTP/v1/agent/checks" | json "next(c['Status'] + ' — ' + c['Output'].splitlines()[1] for c in d.values() if c['Name']=='sidecar')")"
say "gpt-4o recovers; after open_for (5s) one probe goes through and it serves again"
curl -fsS -X POST http://127.0.0.1:19201/_heal >/dev/null
sleep 5.5
for i in 1 2; do info "task $i: $(task "haiku $i")"; done

say "what the sidecar says: sidecar status"
SIDECAR_ADDR=$CONTROL "$SIDECAR" status | sed 's/^/   /' || true
say "the fleet as Consul sees it: sidecar fleet"
CONSUL_HTTP_ADDR=$CONSUL_HTTP "$SIDECAR" fleet | sed 's/^/   /' || true

if [[ "${KEEP:-}" == "1" ]]; then
  say "the demo keeps running: Ctrl-C stops everything"
  info "Consul UI:     http://$CONSUL_HTTP/ui/dc1/services/writer/instances"
  info "status:        SIDECAR_ADDR=$CONTROL $SIDECAR status   (raw: curl $CONTROL/v1/status)"
  info "fleet:         CONSUL_HTTP_ADDR=$CONSUL_HTTP $SIDECAR fleet -watch"
  info "events:        curl -N $CONTROL/v1/events"
  info "metrics:       curl $CONTROL/metrics"
  info "hang it:       curl -X POST $AGENT/hang"
  info "stall it:      curl -X POST $AGENT/stall"
  info "a heartbeat:   SIDECAR_ADDR=$CONTROL $SIDECAR heartbeat -note 'from the shell'"
  info "logs:          $logs"
  wait "${pids[0]}"
fi
say "done: the agent hung and stalled, was isolated, notified about and restarted; a failing service and a failing model were cut off by their breakers while their fallbacks answered; no person involved"
