package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// event is what the demo reads of a sidecar's GET /v1/events and of a
// webhook notification.
type event struct {
	Type    string `json:"type"`
	AgentID string `json:"agent_id"`
	Budget  string `json:"budget"`
	Text    string `json:"text"`
}

// shown are the event types the demo narrates: what the system did.
var shown = map[string]bool{
	"agent.isolated": true, "agent.recovered": true, "agent.restarted": true,
	"breaker.open": true, "breaker.closed": true,
	"model.degraded": true, "model.restored": true,
	"budget.warning": true, "budget.exceeded": true, "budget.burning": true,
}

// watchEvents prints the notable events of one sidecar until ctx ends,
// reconnecting (with Last-Event-ID) when the stream breaks.
func watchEvents(ctx context.Context, addr string, say func(string, ...any)) {
	last := ""
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/events?replay=0", nil)
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				line := sc.Text()
				if id, ok := strings.CutPrefix(line, "id: "); ok {
					last = id
				}
				data, ok := strings.CutPrefix(line, "data: ")
				if !ok {
					continue
				}
				var ev event
				if json.Unmarshal([]byte(data), &ev) == nil && shown[ev.Type] {
					say("  %-13s %s", ev.AgentID, ev.Text)
				}
			}
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// hook is the demo's webhook receiver: it prints what operations would be
// told and remembers which event types it was told of.
type hook struct {
	*http.Server
	mu   sync.Mutex
	seen map[string]bool
}

// told reports whether the webhook received an event of the type.
func (h *hook) told(typ string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen[typ]
}

// webhook receives the sidecars' notifications (notify "ops" in fleet.hcl)
// and prints them as what operations would be told: the agents' isolation
// and recovery, and the budgets' warnings and alarms.
func webhook(addr string, say func(string, ...any)) (*hook, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	h := &hook{seen: map[string]bool{}}
	h.Server = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev event
		if err := json.NewDecoder(r.Body).Decode(&ev); err == nil {
			switch {
			case strings.HasPrefix(ev.Type, "agent."):
				say("  %-13s %s: %s", "ops notified", ev.Type, ev.AgentID)
			case strings.HasPrefix(ev.Type, "budget."):
				say("  %-13s %s: %s, budget %q", "ops notified", ev.Type, ev.AgentID, ev.Budget)
			}
			h.mu.Lock()
			h.seen[ev.Type] = true
			h.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = h.Serve(l) }()
	return h, nil
}
