package fakellm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// duration is a time.Duration in JSON: "50ms", or a number of milliseconds.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		if v < 0 {
			return fmt.Errorf("negative duration %q", s)
		}
		*d = duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil || ms < 0 {
		return fmt.Errorf("want a duration such as \"50ms\" or a number of milliseconds, got %s", b)
	}
	*d = duration(time.Duration(ms * float64(time.Millisecond)))
	return nil
}

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// control is the body of POST /_control: the faults to change (omitted
// ones stay as they are) and the reply.
type control struct {
	FailNext     *int      `json:"fail_next"`
	FailStatus   *int      `json:"fail_status"`
	FailRate     *float64  `json:"fail_rate"`
	Latency      *duration `json:"latency"`
	Stall        *duration `json:"stall"`
	CutAfter     *int      `json:"cut_after"`
	Reset        *bool     `json:"reset"`
	Empty        *bool     `json:"empty"`
	InvalidJSON  *bool     `json:"invalid_json"`
	EventDelay   *duration `json:"event_delay"`
	RetryAfter   *duration `json:"retry_after"`
	Quota        *bool     `json:"quota"`
	ContextLimit *int      `json:"context_limit"`
	Reply        *string   `json:"reply"`
	Nested       *int      `json:"nested"`
}

// check rejects values that make no sense.
func (c *control) check() error {
	switch {
	case c.FailNext != nil && *c.FailNext < 0:
		return errors.New("fail_next must be 0 or more")
	case c.FailStatus != nil && *c.FailStatus != 0 && (*c.FailStatus < 400 || *c.FailStatus > 599):
		return errors.New("fail_status must be an error status (400–599), or 0 for 500")
	case c.FailRate != nil && (*c.FailRate < 0 || *c.FailRate > 100):
		return errors.New("fail_rate must be a percentage (0–100)")
	case c.CutAfter != nil && *c.CutAfter < 0:
		return errors.New("cut_after must be 0 or more")
	case c.Nested != nil && *c.Nested < 0:
		return errors.New("nested must be 0 or more")
	case c.ContextLimit != nil && *c.ContextLimit < 0:
		return errors.New("context_limit must be 0 (no limit) or a number of tokens")
	}
	return nil
}

func (c *control) apply(f *Faults) {
	setIf(&f.FailNext, c.FailNext)
	setIf(&f.FailStatus, c.FailStatus)
	setIf(&f.FailRate, c.FailRate)
	setIf((*duration)(&f.Latency), c.Latency)
	setIf((*duration)(&f.Stall), c.Stall)
	setIf(&f.CutAfter, c.CutAfter)
	setIf(&f.Reset, c.Reset)
	setIf(&f.Empty, c.Empty)
	setIf(&f.InvalidJSON, c.InvalidJSON)
	setIf((*duration)(&f.EventDelay), c.EventDelay)
	setIf((*duration)(&f.RetryAfter), c.RetryAfter)
	setIf(&f.Quota, c.Quota)
	setIf(&f.ContextLimit, c.ContextLimit)
	setIf(&f.Nested, c.Nested)
}

func setIf[T any](dst, src *T) {
	if src != nil {
		*dst = *src
	}
}

// faultsView is how the control endpoints show the faults.
type faultsView struct {
	FailNext     int      `json:"fail_next"`
	FailStatus   int      `json:"fail_status"`
	FailRate     float64  `json:"fail_rate"`
	Latency      duration `json:"latency"`
	Stall        duration `json:"stall"`
	CutAfter     int      `json:"cut_after"`
	Reset        bool     `json:"reset"`
	Empty        bool     `json:"empty"`
	InvalidJSON  bool     `json:"invalid_json"`
	EventDelay   duration `json:"event_delay"`
	RetryAfter   duration `json:"retry_after"`
	Quota        bool     `json:"quota"`
	ContextLimit int      `json:"context_limit"`
	Reply        string   `json:"reply"`
	Nested       int      `json:"nested"`
}

func (s *Server) view() faultsView {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	return faultsView{FailNext: f.FailNext, FailStatus: f.failStatus(), FailRate: f.FailRate,
		Latency: duration(f.Latency), Stall: duration(f.Stall), CutAfter: f.CutAfter, Reset: f.Reset,
		Empty: f.Empty, InvalidJSON: f.InvalidJSON, EventDelay: duration(f.EventDelay),
		RetryAfter: duration(f.RetryAfter), Quota: f.Quota, ContextLimit: f.ContextLimit, Reply: s.reply, Nested: f.Nested}
}

// control answers the endpoints under /_:
//
//	GET  /_control       the faults now
//	POST /_control       change some faults (and the reply)
//	POST /_heal          clear every fault
//	GET  /_stats         the call counters
//	POST /_stats/reset   zero them
//	GET  /_last          the last API call as it arrived
func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	status := http.StatusOK
	var note string
	defer func() {
		s.logLine("%s %s%s status=%d", r.Method, r.URL.Path, note, status)
	}()
	reply := func(code int, v any) {
		status = code
		b, _ := json.MarshalIndent(v, "", "  ")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write(append(b, '\n'))
	}
	fail := func(code int, msg string) { reply(code, map[string]string{"error": msg}) }

	type op struct{ method, path string }
	ops := map[op]func(){
		{http.MethodGet, "/_control"}: func() { reply(http.StatusOK, s.view()) },
		{http.MethodPost, "/_control"}: func() {
			body, err := readBody(w, r)
			if err != nil {
				fail(http.StatusBadRequest, err.Error())
				return
			}
			note = " " + strings.Join(strings.Fields(string(body)), " ")
			var c control
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				fail(http.StatusBadRequest, "want a JSON object of faults (fail_next, fail_status, fail_rate, latency, "+
					"stall, cut_after, reset, empty, invalid_json, event_delay, retry_after, quota, context_limit, nested, "+
					"reply): "+err.Error())
				return
			}
			if err := c.check(); err != nil {
				fail(http.StatusBadRequest, err.Error())
				return
			}
			s.mu.Lock()
			c.apply(&s.faults)
			if c.Reply != nil {
				s.reply = *c.Reply
				if s.reply == "" {
					s.reply = DefaultReply
				}
			}
			s.mu.Unlock()
			reply(http.StatusOK, s.view())
		},
		{http.MethodPost, "/_heal"}:        func() { s.Heal(); reply(http.StatusOK, s.view()) },
		{http.MethodGet, "/_stats"}:        func() { reply(http.StatusOK, s.Stats()) },
		{http.MethodPost, "/_stats/reset"}: func() { s.ResetStats(); reply(http.StatusOK, s.Stats()) },
		{http.MethodGet, "/_last"}: func() {
			if last, ok := s.Last(); ok {
				reply(http.StatusOK, last)
			} else {
				fail(http.StatusNotFound, "no API call yet")
			}
		},
	}
	if f, ok := ops[op{r.Method, r.URL.Path}]; ok {
		f()
		return
	}
	for o := range ops {
		if o.path == r.URL.Path {
			fail(http.StatusMethodNotAllowed, fmt.Sprintf("%s %s is not allowed", r.Method, r.URL.Path))
			return
		}
	}
	fail(http.StatusNotFound, "unknown control endpoint "+r.URL.Path+
		" (GET/POST /_control, POST /_heal, GET /_stats, POST /_stats/reset, GET /_last)")
}
