//go:build e2e && unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// taskClient sends the tasks: long enough for a hung agent's ingress
// timeout and the peer's answer.
var taskClient = &http.Client{Timeout: 30 * time.Second}

// taskResult is how one task ended.
type taskResult struct {
	n          int
	to, by     string // the agent whose ingress took the task, the agent that answered
	status     int    // 0: no answer
	err        string
	sent, done time.Time
}

func (r taskResult) String() string {
	return fmt.Sprintf("%d to %s: status %d by %q after %s %s", r.n, r.to, r.status, r.by, r.done.Sub(r.sent).Round(time.Millisecond), r.err)
}

// sendTask sends task n to the writer's ingress with an Idempotency-Key,
// which lets its sidecar give it to the peer when the agent does not
// answer.
func sendTask(c *http.Client, w *writer, n int) taskResult {
	r := taskResult{n: n, to: w.id, sent: time.Now()}
	defer func() { r.done = time.Now() }()
	req, _ := http.NewRequest(http.MethodPost, w.ingress+"/task", strings.NewReader(fmt.Sprintf(`{"input":"task %d"}`, n)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", fmt.Sprintf("kubelet-test-%d-%d", n, r.sent.UnixNano()))
	resp, err := c.Do(req)
	if err != nil {
		r.err = err.Error()
		r.done = time.Now()
		return r
	}
	defer resp.Body.Close()
	var ans struct {
		Agent string `json:"agent"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(body, &ans) != nil || resp.StatusCode != http.StatusOK {
		r.err = strings.TrimSpace(string(body))
	}
	r.status, r.by, r.done = resp.StatusCode, ans.Agent, time.Now()
	return r
}

// taskLoad sends a task every 200 ms, in turn to each writer's ingress,
// each without waiting for the previous ones.
type taskLoad struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	tasks  []taskResult
}

func startTaskLoad(writers []*writer) *taskLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &taskLoad{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		var inflight sync.WaitGroup
		defer inflight.Wait()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			inflight.Add(1)
			go func(w *writer) {
				defer inflight.Done()
				r := sendTask(taskClient, w, n)
				l.mu.Lock()
				l.tasks = append(l.tasks, r)
				l.mu.Unlock()
			}(writers[n%len(writers)])
		}
	}()
	return l
}

// stop stops sending and waits for the answers to the tasks in flight; it
// may be called again.
func (l *taskLoad) stop() {
	l.cancel()
	<-l.done
}

// results returns how each task ended.
func (l *taskLoad) results() []taskResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]taskResult(nil), l.tasks...)
}
