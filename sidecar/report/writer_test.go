package report

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// fakeStore records the reports written, or refuses them while err is set.
type fakeStore struct {
	mu   sync.Mutex
	err  error
	puts []Report
	dels []string
}

func (f *fakeStore) KVPut(_ context.Context, key string, value []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	r, err := Decode(value)
	if err != nil {
		return err
	}
	f.puts = append(f.puts, r)
	return nil
}

func (f *fakeStore) KVDelete(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dels = append(f.dels, key)
	return nil
}

func (f *fakeStore) written() []Report {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Report(nil), f.puts...)
}

// writerHarness runs a Writer whose state, clock and rounds the test
// drives: step sets the state, nudges, and returns once the writer has
// acted on it (the writer builds a report once per round, and a round
// after the nudged one proves the nudged one finished).
type writerHarness struct {
	t     *testing.T
	store *fakeStore
	w     *Writer

	mu    sync.Mutex
	state Report
	now   time.Time
	built chan struct{}
}

func newWriterHarness(t *testing.T, log hclog.Logger) *writerHarness {
	h := &writerHarness{t: t, store: &fakeStore{}, built: make(chan struct{}),
		now: time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC), state: Report{Agent: "writer", ID: "writer-1"}}
	h.w = NewWriter(h.store, "sidecar/fleet/writer-1", func() Report {
		h.built <- struct{}{}
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.state
	}, func() time.Time { h.mu.Lock(); defer h.mu.Unlock(); return h.now }, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		go func() {
			for range h.built {
			}
		}()
		<-done
	})
	<-h.built // the first round starts
	h.w.Nudge()
	<-h.built // and has finished (its write done), before a test changes the store
	return h
}

func (h *writerHarness) step(change func(r *Report), advance time.Duration) {
	h.mu.Lock()
	change(&h.state)
	h.now = h.now.Add(advance)
	h.mu.Unlock()
	h.w.Nudge()
	<-h.built // the nudged round starts
	h.w.Nudge()
	<-h.built // and has finished
}

func TestWriterWritesChangesAnOperatorActsOnAtOnce(t *testing.T) {
	h := newWriterHarness(t, hclog.NewNullLogger())
	nothing := func(*Report) {}
	h.step(nothing, 0)
	if got := h.store.written(); len(got) != 1 || got[0].ID != "writer-1" || got[0].Updated.IsZero() {
		t.Fatalf("after start: written %+v, want one report with its time", got)
	}

	// The first heartbeat goes at once; a newer one alone waits for Every
	first := h.now
	h.step(func(r *Report) { r.LastHeartbeat = &first }, 0)
	if got := h.store.written(); len(got) != 2 || got[1].LastHeartbeat == nil {
		t.Fatalf("the first heartbeat is not written at once: %+v", got)
	}
	beat := h.now.Add(time.Second)
	h.step(func(r *Report) { r.LastHeartbeat = &beat }, time.Second)
	if got := len(h.store.written()); got != 2 {
		t.Fatalf("a newer heartbeat 1s later was written at once (%d writes)", got)
	}
	h.step(nothing, Every)
	if got := h.store.written(); len(got) != 3 || !got[2].LastHeartbeat.Equal(beat) {
		t.Fatalf("after Every the heartbeat is not written: %+v", got)
	}

	// An opened breaker and an isolation go at once
	h.step(func(r *Report) { r.OpenBreakers = []string{"upstream:researcher"} }, time.Second)
	h.step(func(r *Report) { r.Isolated = true }, time.Second)
	got := h.store.written()
	if len(got) != 5 || len(got[3].OpenBreakers) != 1 || !got[4].Isolated {
		t.Fatalf("urgent changes: written %+v", got)
	}

	// Nothing changed: nothing written, however long
	h.step(nothing, time.Hour)
	if n := len(h.store.written()); n != 5 {
		t.Fatalf("an unchanged state was written again (%d writes)", n)
	}
}

func TestWriterRetriesARefusedWriteAfterEvery(t *testing.T) {
	var logs testutil.SyncBuffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs})
	h := newWriterHarness(t, log)
	h.store.mu.Lock()
	h.store.err = errors.New("Unexpected response code: 403 (Permission denied)")
	h.store.mu.Unlock()

	h.step(func(r *Report) { r.Isolated = true }, time.Second)
	h.step(func(r *Report) { r.OpenBreakers = []string{"x"} }, time.Second)
	if got := len(h.store.written()); got != 1 {
		t.Fatalf("%d writes while the store refuses", got)
	}
	if n := countLines(logs.String(), "cannot write the fleet report"); n != 1 {
		t.Fatalf("warned %d times about the same refusal, want once:\n%s", n, logs.String())
	}

	// Within Every of the refusal, no new attempt; after it, the state goes
	h.store.mu.Lock()
	h.store.err = nil
	h.store.mu.Unlock()
	h.step(func(*Report) {}, time.Second)
	if got := len(h.store.written()); got != 1 {
		t.Fatalf("retried %d times within Every of a refusal", got-1)
	}
	h.step(func(*Report) {}, Every)
	got := h.store.written()
	if len(got) != 2 || !got[1].Isolated || len(got[1].OpenBreakers) != 1 {
		t.Fatalf("after Every the state is not written: %+v", got)
	}
}

func countLines(s, sub string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}
