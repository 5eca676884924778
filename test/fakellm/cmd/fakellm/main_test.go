package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/internal/testutil"
	"github.com/agent-sidecar/sidecar/test/fakellm"
)

func TestFlagsSetTheOptions(t *testing.T) {
	c, err := parseFlags([]string{"-addr", ":0", "-name", "gpt-4o", "-reply", "Hi.", "-seed", "7", "-fail-next", "2",
		"-fail-status", "503", "-fail-rate", "25", "-latency", "5ms", "-stall", "1s", "-cut-after", "3", "-reset",
		"-empty", "-invalid-json", "-event-delay", "10ms", "-retry-after", "2s", "-quota", "-context-limit", "8000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := fakellm.Faults{FailNext: 2, FailStatus: 503, FailRate: 25, Latency: 5 * time.Millisecond, Stall: time.Second,
		CutAfter: 3, Reset: true, Empty: true, InvalidJSON: true, EventDelay: 10 * time.Millisecond, RetryAfter: 2 * time.Second,
		Quota: true, ContextLimit: 8000}
	if c.addr != ":0" || c.opts.Name != "gpt-4o" || c.opts.Reply != "Hi." || c.opts.Seed != 7 || c.opts.Faults != want {
		t.Fatalf("%+v", c)
	}
	for _, bad := range [][]string{{"-fail-rate", "101"}, {"-fail-status", "200"}, {"-latency", "-1s"}, {"-context-limit", "-1"}, {"extra"}, {"-nope"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%v was accepted", bad)
		}
	}
}

func TestRunServesLogsAndStopsCleanly(t *testing.T) {
	var logs testutil.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-name", "gpt-4o", "-reply", "Hi.", "-fail-next", "1",
			"-fail-status", "503"}, &logs, func(a string) { addrs <- a })
	}()
	var base string
	select {
	case a := <-addrs:
		base = "http://" + a
	case err := <-done:
		t.Fatal(err)
	}

	call := func() (int, string) {
		resp, err := http.Post(base+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := call(); status != http.StatusServiceUnavailable {
		t.Fatalf("-fail-next 1: %d %s", status, body)
	}
	if status, body := call(); status != http.StatusOK || !strings.Contains(body, `"content":"Hi."`) {
		t.Fatalf("%d %s", status, body)
	}
	out := logs.String()
	for _, want := range []string{"gpt-4o listening on http://127.0.0.1:",
		"gpt-4o: POST /v1/chat/completions model=gpt-4o status=503 fault=fail_next (0 left)",
		"gpt-4o: POST /v1/chat/completions model=gpt-4o status=200 fault=-"} {
		if !strings.Contains(out, want) {
			t.Fatalf("no %q in the log:\n%s", want, out)
		}
	}

	// A call stalled for a minute does not hold up the exit
	if resp, body := post(t, base+"/_control", `{"stall":"1m"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s", resp.Status, body)
	}
	go func() {
		resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
		if err == nil {
			resp.Body.Close()
		}
	}()
	testutil.EventuallySeen(t, "the stalled call", 2*time.Second, func() (bool, string) {
		_, stats := get(t, base+"/_stats")
		return strings.Contains(stats, `"calls": 3`), stats
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not stop")
	}
	if !strings.Contains(logs.String(), "gpt-4o stopped") {
		t.Fatalf("%s", logs.String())
	}
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func post(t *testing.T, url, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
