package sidecar

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/agent-sidecar/sidecar/sidecar/notify"
)

// eventHistory is how many events the sidecar keeps for status and for
// replay to a new subscriber of GET /v1/events.
const eventHistory = 100

// StreamedEvent is an event of GET /v1/events and status, with its sequence
// number.
type StreamedEvent struct {
	ID int64 `json:"id"`
	notify.Event
}

// eventHub keeps the latest events and hands new ones to subscribers.
type eventHub struct {
	mu     sync.Mutex
	next   int64
	recent []StreamedEvent // oldest first, at most eventHistory
	subs   map[chan StreamedEvent]struct{}
}

func newEventHub() *eventHub {
	return &eventHub{next: 1, subs: map[chan StreamedEvent]struct{}{}}
}

// add records an event and offers it to every subscriber; a subscriber too
// slow to take it misses it (it can reconnect with Last-Event-ID).
func (h *eventHub) add(ev notify.Event) {
	h.mu.Lock()
	se := StreamedEvent{ID: h.next, Event: ev}
	h.next++
	h.recent = append(h.recent, se)
	if len(h.recent) > eventHistory {
		h.recent = append(h.recent[:0:0], h.recent[len(h.recent)-eventHistory:]...)
	}
	for ch := range h.subs {
		select {
		case ch <- se:
		default:
		}
	}
	h.mu.Unlock()
}

// since returns the kept events after id, at most n of the newest.
func (h *eventHub) since(id int64, n int) []StreamedEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []StreamedEvent
	for _, se := range h.recent {
		if se.ID > id {
			out = append(out, se)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return append([]StreamedEvent(nil), out...)
}

func (h *eventHub) subscribe() chan StreamedEvent {
	ch := make(chan StreamedEvent, 64)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch
}

func (h *eventHub) unsubscribe(ch chan StreamedEvent) {
	h.mu.Lock()
	delete(h.subs, ch)
	h.mu.Unlock()
}

// publish records a state transition: in the event stream, in status and
// as a structured log line.
func (s *Sidecar) publish(ev notify.Event) {
	cfg := s.Config()
	if ev.Agent == "" {
		ev.Agent, ev.AgentID = cfg.Agent.Name, cfg.Agent.ID
	}
	if ev.Time.IsZero() {
		ev.Time = s.now().UTC()
	}
	s.events.add(ev)
	args := []any{"text", ev.Text}
	for _, kv := range [][2]string{{"breaker", ev.Breaker}, {"model", ev.Model}, {"reason", ev.Reason}, {"detail", ev.Detail}} {
		if kv[1] != "" {
			args = append(args, kv[0], kv[1])
		}
	}
	s.log.Info("event "+ev.Type, args...)
}

// handleEvents serves GET /v1/events: server-sent events, first the kept
// ones (the last ?replay=N, default 20, or those after Last-Event-ID), then
// each new one as it happens.
func (s *Sidecar) handleEvents(c echo.Context) error {
	replay := 20
	if v := c.QueryParam("replay"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > eventHistory {
			return &httpError{status: http.StatusBadRequest, typ: errInvalidRequest,
				msg: fmt.Sprintf("replay must be a number from 0 to %d, got %q", eventHistory, v)}
		}
		replay = n
	}
	after := int64(0)
	if v := c.Request().Header.Get("Last-Event-ID"); v != "" {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil {
			after, replay = id, eventHistory
		}
	}
	ch := s.events.subscribe()
	defer s.events.unsubscribe(ch)

	w := c.Response()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	last := after
	write := func(se StreamedEvent) error {
		if se.ID <= last {
			return nil
		}
		last = se.ID
		data, _ := json.Marshal(se)
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", se.ID, se.Type, data); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	for _, se := range s.events.since(after, replay) {
		if err := write(se); err != nil {
			return nil
		}
	}
	w.Flush()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-c.Request().Context().Done():
			return nil
		case <-s.stopping:
			return nil
		case se := <-ch:
			if err := write(se); err != nil {
				return nil
			}
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			w.Flush()
		}
	}
}

// RecentEvents returns the latest events, newest last.
func (s *Sidecar) RecentEvents(n int) []StreamedEvent { return s.events.since(0, n) }
