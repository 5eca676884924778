package breaker

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/policies"
)

// refusedError dials a port that was just closed.
func refusedError(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, err = http.Get("http://" + addr + "/")
	if err == nil {
		t.Fatal("a closed port answered")
	}
	return err
}

// timeoutError is an HTTP client's own timeout against a silent server.
func timeoutError(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	c := http.Client{Timeout: 20 * ms}
	_, err = c.Get("http://" + ln.Addr().String() + "/")
	if err == nil {
		t.Fatal("a silent server answered")
	}
	return err
}

func TestClassify(t *testing.T) {
	b := New("t", testConfig(func(c *policies.Breaker) { c.SlowCall = 30 * time.Second }))
	custom := New("t", testConfig(func(c *policies.Breaker) { c.FailureStatuses = []int{409, 502} }))
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	tests := []struct {
		name        string
		b           *Breaker
		status      int
		err         error
		latency     time.Duration
		wantFailure bool
		wantReason  string
	}{
		{"200", b, 200, nil, ms, false, ""},
		{"304", b, 304, nil, ms, false, ""},
		{"404 is the caller's fault", b, 404, nil, ms, false, ""},
		{"400 is the caller's fault", b, 400, nil, ms, false, ""},
		{"429", b, 429, nil, ms, true, "429"},
		{"503", b, 503, nil, ms, true, "503"},
		{"custom 409", custom, 409, nil, ms, true, "409"},
		{"custom: 503 not listed", custom, 503, nil, ms, false, ""},
		{"slow", b, 200, nil, 46 * time.Second, true, "slow: 46s"},
		{"a status failure says so rather than slow", b, 500, nil, 46 * time.Second, true, "500"},
		{"not slow without slow_call", custom, 200, nil, time.Hour, false, ""},
		{"refused", b, 0, refusedError(t), ms, true, "connection refused"},
		{"client timeout", b, 0, timeoutError(t), ms, true, "timeout"},
		{"deadline", b, 0, fmt.Errorf("call: %w", context.DeadlineExceeded), ms, true, "timeout"},
		{"reset", b, 0, reset, ms, true, "connection reset"},
		{"unexpected EOF", b, 0, fmt.Errorf("read body: %w", io.ErrUnexpectedEOF), ms, true, "connection closed"},
		{"dns", b, 0, &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, ms, true, "no such host"},
		{"other: innermost message", b, 0, fmt.Errorf("proxy: %w", fmt.Errorf("upstream: boom")), ms, true, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failure, reason := tt.b.Classify(tt.status, tt.err, tt.latency)
			if failure != tt.wantFailure || reason != tt.wantReason {
				t.Errorf("Classify = %v %q, want %v %q (err %v)", failure, reason, tt.wantFailure, tt.wantReason, tt.err)
			}
		})
	}
}

func TestHotPathAllocatesNothing(t *testing.T) {
	b := New("t", testConfig(func(c *policies.Breaker) { c.SlowCall, c.FailureRate = time.Minute, 50 }))
	tests := []struct {
		name string
		fn   func()
	}{
		{"Classify success", func() { b.Classify(200, nil, ms) }},
		{"Classify failure status", func() { b.Classify(503, nil, ms) }},
		{"Allow and Done, closed", func() {
			p, _ := b.Allow()
			p.Done(200, nil)
		}},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(1000, tt.fn); got != 0 {
			t.Errorf("%s: %.1f allocations, want 0", tt.name, got)
		}
	}
}

func TestLongErrorReasonIsCut(t *testing.T) {
	long := fmt.Errorf("x: %s", string(make([]byte, 200)))
	if _, r := New("t", testConfig(nil)).Classify(0, long, 0); len(r) > maxErrorReason+len("…") {
		t.Errorf("reason of %d bytes", len(r))
	}
}
