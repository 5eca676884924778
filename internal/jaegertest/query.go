package jaegertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrNotFound is what Client.Trace returns for a trace Jaeger does not
// have (yet: spans are queryable a moment after they are sent).
var ErrNotFound = errors.New("trace not found")

const (
	answerLimit  = 16 << 20 // bytes of a query answer read
	maxSearch    = 100      // traces a search returns at most
	queryTimeout = 5 * time.Second
)

// Client reads traces from Jaeger's query API (the HTTP JSON API the UI
// uses: /api/traces).
type Client struct {
	// BaseURL is the query service, "http://127.0.0.1:16686".
	BaseURL string
	// HTTP is the client used; nil means one with a 5 s timeout.
	HTTP *http.Client
}

// Trace is one trace as Jaeger's query API returns it.
type Trace struct {
	ID       string
	Spans    []Span // in the order Jaeger returned them
	Warnings []string
}

// Span is one span of a Trace. Jaeger's API turns OTLP fields into tags:
// the span kind is the tag "span.kind" ("server", "client", "internal"…),
// an error status the tags "otel.status_code" ("ERROR"),
// "otel.status_description" and "error" (true), the instrumentation scope
// "otel.scope.name".
type Span struct {
	TraceID  string
	SpanID   string
	ParentID string // "" for a root span
	Name     string // the operation name
	Start    time.Time
	Duration time.Duration
	// Tags are the span's attributes: string, bool, int64 or float64 values
	// (a slice attribute arrives as its JSON text).
	Tags map[string]any
	// Service is the resource's service.name; Resource the other resource
	// attributes.
	Service  string
	Resource map[string]any
	Events   []Event
}

// Event is a span event (a "log" in Jaeger's API).
type Event struct {
	Name  string
	Time  time.Time
	Attrs map[string]any
}

// Span returns the first span called name.
func (tr Trace) Span(name string) (Span, bool) {
	for _, s := range tr.Spans {
		if s.Name == name {
			return s, true
		}
	}
	return Span{}, false
}

// Roots are the spans without a parent in the trace, by start time.
func (tr Trace) Roots() []Span { return tr.children("") }

// Children are the spans whose parent is s, by start time.
func (tr Trace) Children(s Span) []Span { return tr.children(s.SpanID) }

func (tr Trace) children(parent string) []Span {
	var out []Span
	for _, s := range tr.Spans {
		if s.ParentID == parent {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return out
}

// Tree is the trace drawn as an indented list of span names with their
// services, for failure messages: "task writer (writer)\n  attempt … ".
// A span whose parent is not in the trace is drawn as a root.
func (tr Trace) Tree() string {
	have := map[string]bool{}
	for _, s := range tr.Spans {
		have[s.SpanID] = true
	}
	var b strings.Builder
	var draw func(s Span, depth int)
	draw = func(s Span, depth int) {
		if depth > 64 { // a cycle in bad data, not a real tree
			return
		}
		fmt.Fprintf(&b, "%s%s (%s)\n", strings.Repeat("  ", depth), s.Name, s.Service)
		for _, c := range tr.Children(s) {
			draw(c, depth+1)
		}
	}
	for _, s := range tr.Spans {
		if s.ParentID == "" || !have[s.ParentID] {
			draw(s, 0)
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Trace returns the trace with the given id (32 hex digits), or
// ErrNotFound.
func (c *Client) Trace(ctx context.Context, traceID string) (Trace, error) {
	var traces []Trace
	err := c.get(ctx, "/api/traces/"+url.PathEscape(traceID), &traces)
	if err != nil {
		return Trace{}, err
	}
	if len(traces) == 0 {
		return Trace{}, ErrNotFound
	}
	return traces[0], nil
}

// Search is a query for traces of one service.
type Search struct {
	Service   string
	Operation string            // "" for any
	Tags      map[string]string // span, scope or resource attributes, compared as text
	Lookback  time.Duration     // how far back; 0 means an hour
	Limit     int               // at most this many traces; 0 means 20 (capped at 100)
}

// Find returns the traces that match q, newest first as Jaeger orders them.
func (c *Client) Find(ctx context.Context, q Search) ([]Trace, error) {
	v := url.Values{"service": {q.Service}}
	if q.Operation != "" {
		v.Set("operation", q.Operation)
	}
	if len(q.Tags) > 0 {
		tags, err := json.Marshal(q.Tags)
		if err != nil {
			return nil, err
		}
		v.Set("tags", string(tags))
	}
	lookback := q.Lookback
	if lookback <= 0 {
		lookback = time.Hour
	}
	end := time.Now()
	v.Set("start", strconv.FormatInt(end.Add(-lookback).UnixMicro(), 10))
	v.Set("end", strconv.FormatInt(end.UnixMicro(), 10))
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	v.Set("limit", strconv.Itoa(min(limit, maxSearch)))
	var traces []Trace
	err := c.get(ctx, "/api/traces?"+v.Encode(), &traces)
	if errors.Is(err, ErrNotFound) { // a service Jaeger has not seen
		return nil, nil
	}
	return traces, err
}

// Services lists the services Jaeger has spans of; it also tells that the
// query service is up.
func (c *Client) Services(ctx context.Context) ([]string, error) {
	var raw json.RawMessage
	if err := c.getRaw(ctx, "/api/services", &raw); err != nil {
		return nil, err
	}
	var names []string
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &names); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// get reads a list of traces from path.
func (c *Client) get(ctx context.Context, path string, into *[]Trace) error {
	var raw json.RawMessage
	if err := c.getRaw(ctx, path, &raw); err != nil {
		return err
	}
	var wire []wireTrace
	if len(raw) > 0 && string(raw) != "null" {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&wire); err != nil {
			return fmt.Errorf("jaeger query %s: %w", path, err)
		}
	}
	for _, w := range wire {
		*into = append(*into, w.trace())
	}
	return nil
}

// getRaw reads the "data" of the answer to path. A 404 is ErrNotFound.
func (c *Client) getRaw(ctx context.Context, path string, data *json.RawMessage) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.BaseURL, "/")+path, nil)
	if err != nil {
		return err
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: queryTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, answerLimit))
	if err != nil {
		return err
	}
	var answer struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
		} `json:"errors"`
	}
	if resp.StatusCode == http.StatusNotFound {
		return ErrNotFound
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fmt.Errorf("jaeger query %s: %s: %w", path, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || len(answer.Errors) > 0 {
		msg := resp.Status
		if len(answer.Errors) > 0 {
			msg += ": " + answer.Errors[0].Msg
		}
		return fmt.Errorf("jaeger query %s: %s", path, msg)
	}
	*data = answer.Data
	return nil
}

// The JSON of Jaeger's query API (jaeger's internal/uimodel).
type (
	wireTrace struct {
		TraceID   string                 `json:"traceID"`
		Spans     []wireSpan             `json:"spans"`
		Processes map[string]wireProcess `json:"processes"`
		Warnings  []string               `json:"warnings"`
	}
	wireSpan struct {
		TraceID       string `json:"traceID"`
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []struct {
			RefType string `json:"refType"`
			TraceID string `json:"traceID"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		StartTime int64          `json:"startTime"` // µs since the epoch
		Duration  int64          `json:"duration"`  // µs
		Tags      []wireKeyValue `json:"tags"`
		Logs      []struct {
			Timestamp int64          `json:"timestamp"`
			Fields    []wireKeyValue `json:"fields"`
		} `json:"logs"`
		ProcessID string `json:"processID"`
	}
	wireProcess struct {
		ServiceName string         `json:"serviceName"`
		Tags        []wireKeyValue `json:"tags"`
	}
	wireKeyValue struct {
		Key   string `json:"key"`
		Type  string `json:"type"`
		Value any    `json:"value"`
	}
)

func (w wireTrace) trace() Trace {
	tr := Trace{ID: w.TraceID, Warnings: w.Warnings}
	for _, ws := range w.Spans {
		p := w.Processes[ws.ProcessID]
		s := Span{
			TraceID:  ws.TraceID,
			SpanID:   ws.SpanID,
			Name:     ws.OperationName,
			Start:    time.UnixMicro(ws.StartTime),
			Duration: time.Duration(ws.Duration) * time.Microsecond,
			Tags:     tagMap(ws.Tags),
			Service:  p.ServiceName,
			Resource: tagMap(p.Tags),
		}
		for _, r := range ws.References {
			// OTLP has one parent; Jaeger shows it as a CHILD_OF
			// reference (span links are FOLLOWS_FROM).
			if r.RefType == "CHILD_OF" && r.TraceID == ws.TraceID {
				s.ParentID = r.SpanID
				break
			}
		}
		for _, l := range ws.Logs {
			attrs := tagMap(l.Fields)
			name, _ := attrs["event"].(string)
			delete(attrs, "event")
			s.Events = append(s.Events, Event{Name: name, Time: time.UnixMicro(l.Timestamp), Attrs: attrs})
		}
		tr.Spans = append(tr.Spans, s)
	}
	return tr
}

// tagMap turns Jaeger's typed key/values into Go values.
func tagMap(kvs []wireKeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		v := kv.Value
		if n, ok := v.(json.Number); ok {
			if kv.Type == "int64" {
				if i, err := n.Int64(); err == nil {
					v = i
				}
			} else if f, err := n.Float64(); err == nil {
				v = f
			}
		}
		m[kv.Key] = v
	}
	return m
}
