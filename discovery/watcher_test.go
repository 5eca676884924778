package discovery_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

func TestQueryKey(t *testing.T) {
	tests := []struct {
		name string
		q    discovery.Query
		want string
	}{
		{"service only", discovery.Query{Service: "researcher"}, "researcher"},
		{"tags sorted", discovery.Query{Service: "r", Tags: []string{"b", "a"}}, "r?tag=a&tag=b"},
		{"duplicate tags dropped", discovery.Query{Service: "r", Tags: []string{"a", "b", "a"}}, "r?tag=a&tag=b"},
		{"filter last, readable", discovery.Query{Service: "r", Tags: []string{"a"}, Filter: `Service.Meta.tier == "gold"`},
			`r?tag=a&filter=Service.Meta.tier == "gold"`},
		{"filter only", discovery.Query{Service: "r", Filter: "x"}, "r?filter=x"},
		{"odd tag escaped", discovery.Query{Service: "r", Tags: []string{"a&filter=x"}}, "r?tag=a%26filter%3Dx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.q.Key(); got != tt.want {
				t.Errorf("Key() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWatcherFollowsCheckStatus(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	c := a.Client(t)
	q := discovery.Query{Service: "researcher"}

	// Given three passing instances, registered out of order
	threeInstances(t, c, "researcher")
	w := startWatcher(t, discovery.Config{Address: a.HTTPAddr}, func(w *discovery.Watcher) { w.Watch(q) })

	// When the watcher has heard from Consul
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := w.Wait(wctx, q)

	// Then Instances returns all three, sorted by ID, as registered
	if !slices.Equal(idsOf(first), []string{"a-1", "b-2", "c-3"}) || !first.Known || first.Stale || first.Updated.IsZero() {
		t.Fatalf("Wait = %+v, want a-1 b-2 c-3, known, fresh", first)
	}
	b := first.Instances[1]
	if b.Service != "researcher" || b.Address != "127.0.0.1" || b.Port != 9002 || b.Node == "" ||
		b.Meta["tier"] != "gold" || !slices.Equal(b.Tags, []string{"gpu", "fast"}) {
		t.Errorf("b-2 = %+v, want the node's address 127.0.0.1, port 9002, its tags and meta", b)
	}
	if got := first.Instances[0].HostPort(); got != "10.0.0.1:9001" {
		t.Errorf("a-1 HostPort = %q, want 10.0.0.1:9001", got)
	}

	// When one instance's check turns critical
	setStatus(t, c, "a-1", api.HealthCritical)
	since := time.Now()

	// Then it leaves the set within 2s
	testutil.EventuallySeen(t, "critical instance dropped", 2*time.Second, has(w.Watcher, q, "b-2", "c-3"))
	t.Logf("critical instance dropped after %s", time.Since(since).Round(time.Millisecond))

	// When another turns warning, and then the first passes again
	setStatus(t, c, "b-2", api.HealthWarning)
	setStatus(t, c, "a-1", api.HealthPassing)

	// Then the warning instance stays in rotation and the recovered one is back
	testutil.EventuallySeen(t, "recovered instance back, warning one kept", 2*time.Second, has(w.Watcher, q, "a-1", "b-2", "c-3"))
	if e := entryOf(t, c, "researcher", "b-2"); e.Checks.AggregatedStatus() != api.HealthWarning {
		t.Errorf("b-2 aggregated status in Consul = %q, want warning", e.Checks.AggregatedStatus())
	}

	// And OnChange saw each change of membership, in order
	want := []string{"researcher: [a-1 b-2 c-3]", "researcher: [b-2 c-3]", "researcher: [a-1 b-2 c-3]"}
	if got := w.events.all(); !slices.Equal(got, want) {
		t.Errorf("OnChange calls = %q, want %q", got, want)
	}
}

func TestWatcherSelectsByTagsAndFilter(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	c := a.Client(t)
	threeInstances(t, c, "worker")
	w := startWatcher(t, discovery.Config{Address: a.HTTPAddr}, nil)

	tests := []struct {
		name string
		q    discovery.Query
		want []string
	}{
		{"one tag", discovery.Query{Service: "worker", Tags: []string{"gpu"}}, []string{"a-1", "b-2"}},
		{"all tags must match", discovery.Query{Service: "worker", Tags: []string{"fast", "gpu"}}, []string{"b-2"}},
		{"filter on meta", discovery.Query{Service: "worker", Filter: `Service.Meta.tier == "gold"`}, []string{"b-2"}},
		{"filter on port", discovery.Query{Service: "worker", Filter: "Service.Port != 9002"}, []string{"a-1", "c-3"}},
		{"tag and filter", discovery.Query{Service: "worker", Tags: []string{"gpu"}, Filter: `Service.Address == "10.0.0.1"`}, []string{"a-1"}},
		{"no match", discovery.Query{Service: "worker", Tags: []string{"tpu"}}, []string{}},
		{"unknown service", discovery.Query{Service: "nobody"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Given a query the watcher does not follow yet
			// When it is asked for the first time
			got := w.Instances(tt.q)

			// Then it is not known at once, and soon holds the selected instances
			if got.Known {
				t.Errorf("first Instances = %s, want not known yet", describe(got))
			}
			testutil.EventuallySeen(t, "selected instances", 5*time.Second, has(w.Watcher, tt.q, tt.want...))
		})
	}

	t.Run("invalid filter", func(t *testing.T) {
		// Given a filter Consul rejects
		q := discovery.Query{Service: "worker", Filter: "Service.Port =="}

		// When it is waited for
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		w.Wait(ctx, q)

		// Then the set is unknown and stale, with Consul's reason
		got := w.Instances(q)
		if got.Known || !got.Stale || !strings.Contains(got.LastError, "boolean expression") {
			t.Errorf("Instances = %+v, want unknown, stale, with Consul's reason", got)
		}
	})

	// And every query is listed in Sets under its key
	sets := w.Sets()
	for _, tt := range tests {
		if _, ok := sets[tt.q.Key()]; !ok {
			t.Errorf("Sets has no entry for %q", tt.q.Key())
		}
	}
}

func TestWatcherServesLastKnownWhileConsulIsDown(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	c := a.Client(t)
	q := discovery.Query{Service: "phoenix"}

	// Given a watched service with three passing instances
	threeInstances(t, c, "phoenix")
	w := startWatcher(t, discovery.Config{Address: a.HTTPAddr, Token: fakeToken}, nil)
	testutil.EventuallySeen(t, "three instances", 5*time.Second, has(w.Watcher, q, "a-1", "b-2", "c-3"))

	// When Consul stops
	a.Stop()

	// Then the last known set is still served, marked stale, with the error
	var set discovery.InstanceSet
	testutil.EventuallySeen(t, "stale", 5*time.Second, func() (bool, string) {
		set = w.Instances(q)
		return set.Stale, describe(set)
	})
	if !set.Known || !slices.Equal(idsOf(set), []string{"a-1", "b-2", "c-3"}) || set.LastError == "" {
		t.Errorf("while Consul is down: %+v, want the three known instances and an error", set)
	}
	if strings.Contains(set.LastError, fakeToken) {
		t.Errorf("LastError contains the token: %q", set.LastError)
	}
	// ...for as long as the outage lasts, retrying meanwhile
	testutil.EventuallySeen(t, "retries", 5*time.Second, func() (bool, string) {
		return strings.Contains(w.logs.String(), "consul query failed again"), "no retry logged yet"
	})

	// When Consul comes back without its state and the instances register again
	a.Restart(t)
	back := time.Now()
	register(t, c, "phoenix", member{id: "d-4", port: 9004})
	register(t, c, "phoenix", member{id: "a-1", port: 9001})

	// Then the new set is served within seconds, no longer stale
	testutil.EventuallySeen(t, "new set", 10*time.Second, has(w.Watcher, q, "a-1", "d-4"))
	t.Logf("new set served %s after Consul came back", time.Since(back).Round(10*time.Millisecond))
	if set := w.Instances(q); set.LastError != "" {
		t.Errorf("LastError = %q after recovery, want empty", set.LastError)
	}

	// And the outage was logged as one warning and a recovery, never with the token
	w.stop()
	logs := w.logs.String()
	if n := strings.Count(logs, "[WARN]"); n != 1 {
		t.Errorf("%d warnings logged, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs, "consul answers again") {
		t.Errorf("recovery not logged:\n%s", logs)
	}
	if strings.Contains(logs, fakeToken) {
		t.Errorf("logs contain the token:\n%s", logs)
	}
	// And OnChange saw the stale flip and the recovery
	events := w.events.all()
	if !slices.ContainsFunc(events, func(e string) bool { return strings.Contains(e, "[a-1 b-2 c-3] stale") }) ||
		events[len(events)-1] != "phoenix: [a-1 d-4]" {
		t.Errorf("OnChange calls = %q, want a stale flip, then [a-1 d-4] last", events)
	}
}

// Not parallel: it counts the goroutines following queries, so no other
// test may run watchers meanwhile.
func TestWatcherRetainStopsWatches(t *testing.T) {
	a := consultest.Start(t)
	threeInstances(t, a.Client(t), "fleet")
	keep := discovery.Query{Service: "fleet"}
	w := startWatcher(t, discovery.Config{Address: a.HTTPAddr}, func(w *discovery.Watcher) { w.Watch(keep) })
	testutil.EventuallySeen(t, "kept query answered", 5*time.Second, has(w.Watcher, keep, "a-1", "b-2", "c-3"))

	// Given two more watched queries, one also asked with its tags in another order
	gpu := discovery.Query{Service: "fleet", Tags: []string{"gpu", "fast"}}
	other := discovery.Query{Service: "fleet", Filter: `Service.ID != "a-1"`}
	w.Watch(gpu)
	w.Watch(discovery.Query{Service: "fleet", Tags: []string{"fast", "gpu", "fast"}}) // same as gpu
	w.Watch(other)
	testutil.EventuallySeen(t, "gpu answered", 5*time.Second, has(w.Watcher, gpu, "b-2"))
	testutil.EventuallySeen(t, "other answered", 5*time.Second, has(w.Watcher, other, "b-2", "c-3"))
	if n := len(w.Sets()); n != 3 {
		t.Fatalf("Sets lists %d queries, want 3: %v", n, w.Sets())
	}
	if n := followers(); n != 3 {
		t.Fatalf("%d goroutines follow queries, want 3", n)
	}

	// When a reload keeps only the first query
	w.Retain([]discovery.Query{keep})

	// Then Sets lists only it, and the dropped watches' goroutines end
	if got := w.Sets(); len(got) != 1 || !got[keep.Key()].Known {
		t.Errorf("Sets after Retain = %v, want only %q", got, keep.Key())
	}
	testutil.EventuallySeen(t, "goroutines stopped", 5*time.Second, func() (bool, string) {
		n := followers()
		return n == 1, fmt.Sprintf("%d goroutines follow queries", n)
	})

	// And the kept query is still followed
	if set := w.Instances(keep); !set.Known || len(set.Instances) != 3 {
		t.Errorf("kept query = %s, want its three instances", describe(set))
	}

	// And once Run returned, none is left
	w.stop()
	if n := followers(); n != 0 {
		t.Errorf("%d goroutines follow queries after Run returned, want 0", n)
	}
}

// followers counts the goroutines following a query, in all watchers.
func followers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "discovery.(*Watcher).follow(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

func TestWatcherWaitAndRun(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	threeInstances(t, a.Client(t), "early")

	t.Run("Wait before Run returns when Run has the answer", func(t *testing.T) {
		// Given a query watched before Run, with a blocking wait far longer than the test
		w, err := discovery.NewWatcher(discovery.Config{Address: a.HTTPAddr}, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.WaitTime = 10 * time.Minute
		q := discovery.Query{Service: "early"}
		w.Watch(q)
		if set := w.Instances(q); set.Known {
			t.Fatalf("known before Run: %+v", set)
		}

		// When Run starts while Wait waits
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			w.Run(ctx)
		}()
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer wcancel()
		set := w.Wait(wctx, q)

		// Then Wait returns the answer
		if !set.Known || len(set.Instances) != 3 {
			t.Errorf("Wait = %s, want three known instances", describe(set))
		}

		// And Run returns promptly once cancelled, mid blocking query
		cancel()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatal("Run did not return within 2s of cancel")
		}
	})

	t.Run("Wait gives up with its context while Consul is down", func(t *testing.T) {
		// Given a Consul that does not answer
		down := consultest.Start(t)
		down.Stop()
		w := startWatcher(t, discovery.Config{Address: down.HTTPAddr}, nil)

		// When the first request of a query waits for it
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		set := w.Wait(ctx, discovery.Query{Service: "early"})

		// Then it returns when the context ends, with nothing known
		if set.Known || ctx.Err() == nil {
			t.Errorf("Wait = %+v (ctx err %v), want unknown after the deadline", set, ctx.Err())
		}

		// And Run returns promptly while retrying with backoff
		w.stop()
	})
}

func TestWatcherConcurrentUse(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	threeInstances(t, a.Client(t), "busy")
	w := startWatcher(t, discovery.Config{Address: a.HTTPAddr}, nil)

	// Given many callers reading, watching and retaining at once
	qs := []discovery.Query{
		{Service: "busy"}, {Service: "busy", Tags: []string{"gpu"}}, {Service: "busy", Filter: `Service.ID != "a-1"`},
	}
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := range 2000 {
				q := qs[(i+j)%len(qs)]
				if set := w.Instances(q); set.Known && len(set.Instances) == 0 {
					t.Errorf("%s known but empty", q.Key())
					return
				}
				if j%500 == 0 {
					w.Retain(qs[:1+(i%len(qs))])
				}
			}
		}()
	}
	for range 8 {
		<-done
	}

	// When the dust settles
	w.Retain(qs)
	for _, q := range qs {
		w.Watch(q)
	}

	// Then every query is answered correctly
	testutil.EventuallySeen(t, "all answered", 5*time.Second, has(w.Watcher, qs[0], "a-1", "b-2", "c-3"))
	testutil.EventuallySeen(t, "gpu answered", 5*time.Second, has(w.Watcher, qs[1], "a-1", "b-2"))
	testutil.EventuallySeen(t, "filter answered", 5*time.Second, has(w.Watcher, qs[2], "b-2", "c-3"))
}

// entryOf returns Consul's health entry for one instance.
func entryOf(t *testing.T, c *api.Client, service, id string) *api.ServiceEntry {
	t.Helper()
	entries, _, err := c.Health().Service(service, "", false, nil)
	if err != nil {
		t.Fatalf("health of %s: %v", service, err)
	}
	for _, e := range entries {
		if e.Service.ID == id {
			return e
		}
	}
	t.Fatalf("%s not among the instances of %s", id, service)
	return nil
}
