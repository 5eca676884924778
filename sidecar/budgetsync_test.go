package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/policies"
	"github.com/agent-sidecar/sidecar/sidecar/budget"
)

// fleetAgent is one agent of the fleet test: it calls its sidecar's model
// every pause until a call is refused, and counts the tokens it was served.
type fleetAgent struct {
	id       string
	addr     string
	served   int64 // tokens served, as the answers reported them
	calls    int
	rejected bool
	elapsed  time.Duration // from the first call to the first refusal
}

// loop calls the model until a call is refused or until deadline.
func (a *fleetAgent) loop(t *testing.T, pause time.Duration, deadline time.Time) {
	body, _ := json.Marshal(chat("gpt-4o"))
	start := time.Now()
	for time.Now().Before(deadline) {
		resp, err := http.Post("http://"+a.addr+"/llm/v1/chat/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Errorf("%s: %v", a.id, err)
			return
		}
		var answer struct {
			Usage struct {
				TotalTokens int64 `json:"total_tokens"`
			} `json:"usage"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&answer)
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			a.served += answer.Usage.TotalTokens
			a.calls++
		case http.StatusTooManyRequests:
			a.rejected, a.elapsed = true, time.Since(start)
			return
		default:
			t.Errorf("%s: status %d, want 200 or 429", a.id, resp.StatusCode)
			return
		}
		time.Sleep(pause)
	}
}

func TestServiceBudgetIsSharedByThreeSidecarsThroughConsul(t *testing.T) {
	testutil.VerifyNoLeaks(t) // before Consul starts: see runConsulSidecar
	agent := consultest.Start(t)
	m, _ := fakeModel(t, "gpt-4o")
	const limit = 10000
	const syncEvery = time.Second
	const pause = 10 * time.Millisecond

	// Given three sidecars of the service "writer" sharing a tokens budget in Consul KV
	agents := make([]*fleetAgent, 3)
	for i := range agents {
		cfg := policies.Dev()
		cfg.Agent.Name, cfg.Agent.ID, cfg.Agent.Port = "writer", "writer-"+string(rune('1'+i)), 8081
		cfg.Agent.StateDir = t.TempDir()
		cfg.Listen.Address = "127.0.0.1:0"
		cfg.Consul.Address = agent.HTTPAddr
		cfg.Consul.SyncInterval = 500 * time.Millisecond
		cfg.Consul.DeregisterCriticalAfter = time.Minute
		cfg.Health.HeartbeatInterval = time.Hour
		cfg.Models = map[string]policies.Model{"gpt-4o": m}
		cfg.Budgets = map[string]policies.Budget{"fleet": {Name: "fleet", Window: 24 * time.Hour, Tokens: limit,
			Action: policies.BudgetReject, Scope: policies.BudgetScopeService, SyncEvery: syncEvery}}
		s := runSidecarLoggingTo(t, cfg, hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}}))
		agents[i] = &fleetAgent{id: cfg.Agent.ID, addr: s.Addr()}
	}

	// When each agent loops on calls until refused
	var wg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second)
	for _, a := range agents {
		wg.Go(func() { a.loop(t, pause, deadline) })
	}
	wg.Wait()

	// Then every sidecar refuses, the total in Consul reaches the limit, and
	// the overshoot is within instances × rate × 2 × sync_every
	var served int64
	var bound float64
	for _, a := range agents {
		if !a.rejected {
			t.Errorf("%s was never refused (served %d tokens in %d calls)", a.id, a.served, a.calls)
			continue
		}
		served += a.served
		rate := float64(a.served) / a.elapsed.Seconds()
		bound += rate*2*syncEvery.Seconds() + float64(a.served)/float64(max(a.calls, 1)) // plus one answer in flight
		t.Logf("%s: %d tokens in %d calls over %s (%.0f tokens/s)", a.id, a.served, a.calls, a.elapsed.Round(time.Millisecond), rate)
	}
	client, err := discovery.NewClient(discovery.Config{Address: agent.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	var total budget.Total
	testutil.Poll(5*syncEvery, func() bool {
		value, _, found, err := client.KVGet(context.Background(), budget.Key(policies.DefaultFleetPrefix, "writer", "fleet"))
		if err != nil || !found {
			return false
		}
		_ = json.Unmarshal(value, &total)
		return total.Tokens == served // every sidecar has synced what it served
	})
	if total.Tokens != served {
		t.Errorf("total in Consul KV = %d tokens, want the %d served", total.Tokens, served)
	}
	if total.Tokens < limit {
		t.Errorf("total in Consul KV = %d tokens, want at least the limit %d", total.Tokens, limit)
	}
	over := float64(total.Tokens - limit)
	t.Logf("limit %d tokens, total %d: overshoot %.0f tokens (%.1f %%), bound %.0f", limit, total.Tokens, over,
		100*over/limit, bound)
	if over > bound {
		t.Errorf("overshoot %.0f tokens, want at most %.0f (instances × rate × 2 × sync_every + one answer each)", over, bound)
	}
}
