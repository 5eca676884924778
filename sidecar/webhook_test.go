package sidecar

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"

	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

// hook is a webhook that records the events it receives.
type hook struct {
	mu       sync.Mutex
	received []notify.Event
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ev notify.Event
	if err := json.Unmarshal(body, &ev); err == nil {
		h.mu.Lock()
		h.received = append(h.received, ev)
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hook) events() []notify.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]notify.Event(nil), h.received...)
}
