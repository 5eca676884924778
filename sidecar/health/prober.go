package health

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/internal/readable"
	"github.com/agent-sidecar/sidecar/internal/redact"
	"github.com/agent-sidecar/sidecar/policies"
)

// Prober polls the agent's health URL for agents that cannot send
// heartbeats themselves; each 2xx answer counts as a heartbeat.
type Prober struct {
	log    hclog.Logger
	cfg    policies.Probe
	client *http.Client
	beat   func(Heartbeat)
}

// NewProber returns a prober that calls beat for each successful probe.
// It has its own connections (with the settings of http.DefaultTransport),
// which Run closes when it returns.
func NewProber(log hclog.Logger, cfg policies.Probe, beat func(Heartbeat)) *Prober {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &Prober{log: log, cfg: cfg, client: &http.Client{Transport: tr}, beat: beat}
}

// Run probes at once and then every interval until ctx is done. When it
// returns, its keep-alive connection to the agent is closed.
func (p *Prober) Run(ctx context.Context) {
	defer p.client.CloseIdleConnections()
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		err := p.probe(ctx)
		switch {
		case err == nil && failing:
			p.log.Info("probe answered again", "url", redact.URL(p.cfg.URL))
			failing = false
		case err != nil && ctx.Err() == nil:
			if !failing {
				p.log.Warn("probe failed", "url", redact.URL(p.cfg.URL), "error", err)
			}
			failing = true
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Prober) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.URL, nil)
	if err != nil {
		return fmt.Errorf("%s", readable.WithoutURL(err))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s", readable.WithoutURL(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	p.beat(Heartbeat{Status: ReportOK, Source: SourceProbe,
		Note: fmt.Sprintf("probe %s answered %s", redact.URL(p.cfg.URL), resp.Status)})
	return nil
}
