package health

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/agent-sidecar/sidecar/internal/jsonguard"
)

// Limits on what an agent may send in a heartbeat.
const (
	// MaxHeartbeatBody is the largest heartbeat body; the control API
	// answers 413 to a larger one.
	MaxHeartbeatBody = 64 << 10
	maxNoteLen       = 1024
	maxMetrics       = 64
	maxProgressLen   = 256
)

// heartbeatBody is the JSON an agent may POST to /v1/heartbeat.
type heartbeatBody struct {
	Status   string          `json:"status"`
	Note     string          `json:"note"`
	Metrics  map[string]any  `json:"metrics"`
	Progress json.RawMessage `json:"progress"`
}

// ParseHeartbeat validates a heartbeat body. An empty body is an "ok"
// heartbeat. An error says, for the agent's author, what to send instead;
// every error is the sender's (the control API answers 400).
func ParseHeartbeat(body []byte) (Heartbeat, error) {
	hb := Heartbeat{Status: ReportOK, Source: SourceAPI}
	if len(bytes.TrimSpace(body)) == 0 {
		return hb, nil
	}
	if _, err := jsonguard.Scan(body, jsonguard.MaxDepth); jsonguard.TooDeep(err) {
		return hb, fmt.Errorf("heartbeat body is %s; send a flat {\"status\":…,\"metrics\":{…}} object", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var in heartbeatBody
	if err := dec.Decode(&in); err != nil {
		return hb, fmt.Errorf("heartbeat body is not valid JSON: %s; send {\"status\":\"ok|degraded|failing\",\"note\":\"…\",\"metrics\":{…},\"progress\":…} or an empty body", jsonErr(err))
	}
	if dec.More() {
		return hb, errors.New("heartbeat body has data after the JSON object; send exactly one object")
	}
	switch in.Status {
	case "", ReportOK, ReportDegraded, ReportFailing:
		if in.Status != "" {
			hb.Status = in.Status
		}
	default:
		return hb, fmt.Errorf("heartbeat status %q is not valid: use \"ok\", \"degraded\" or \"failing\"", clip(in.Status, 40))
	}
	if len(in.Note) > maxNoteLen {
		return hb, fmt.Errorf("heartbeat note is %d bytes; the limit is %d", len(in.Note), maxNoteLen)
	}
	hb.Note = in.Note
	if len(in.Metrics) > maxMetrics {
		return hb, fmt.Errorf("heartbeat has %d metrics; the limit is %d", len(in.Metrics), maxMetrics)
	}
	if len(in.Metrics) > 0 {
		hb.Metrics = make(map[string]any, len(in.Metrics))
		for k, v := range in.Metrics {
			switch v := v.(type) {
			case json.Number:
				if i, err := v.Int64(); err == nil {
					hb.Metrics[k] = i
				} else if f, err := v.Float64(); err == nil {
					hb.Metrics[k] = f
				} else {
					return hb, fmt.Errorf("metric %q: %s is not a number", clip(k, 40), clip(v.String(), 40))
				}
			case string:
				hb.Metrics[k] = clip(v, 128)
			case bool:
				hb.Metrics[k] = v
			default:
				return hb, fmt.Errorf("metric %q must be a number, string or boolean", clip(k, 40))
			}
		}
	}
	p, err := parseProgress(in.Progress)
	if err != nil {
		return hb, err
	}
	hb.Progress = p
	return hb, nil
}

func parseProgress(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var p string
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &p); err != nil {
			return "", errors.New("progress is not a valid JSON string")
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		p = string(raw)
	default:
		return "", errors.New("progress must be a string or a number (anything that changes while the agent gets work done)")
	}
	if len(p) > maxProgressLen {
		return "", fmt.Errorf("progress is %d bytes; the limit is %d", len(p), maxProgressLen)
	}
	return p, nil
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be %s, got %s", te.Field, te.Type, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	return err.Error()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
