package discovery_test

import (
	"context"
	"testing"
	"time"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/consultest"
)

// BenchmarkInstances measures the read every proxied request makes: the
// current set of a watched query, from memory, with eight other queries
// watched beside it.
func BenchmarkInstances(b *testing.B) {
	a := consultest.Start(b)
	threeInstances(b, a.Client(b), "bench")
	queries := []struct {
		name string
		q    discovery.Query
	}{
		{"service", discovery.Query{Service: "bench"}},
		{"tags and filter", discovery.Query{Service: "bench", Tags: []string{"fast", "gpu"}, Filter: `Service.Meta.tier == "gold"`}},
	}
	w := startWatcher(b, discovery.Config{Address: a.HTTPAddr}, func(w *discovery.Watcher) {
		for _, tt := range queries {
			w.Watch(tt.q)
		}
		for _, tag := range []string{"a", "b", "c", "d"} {
			w.Watch(discovery.Query{Service: "bench", Tags: []string{tag}})
			w.Watch(discovery.Query{Service: "other-" + tag})
		}
	})
	for _, tt := range queries {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		set := w.Wait(ctx, tt.q)
		cancel()
		if !set.Known || len(set.Instances) == 0 {
			b.Fatalf("%s: %s, want known instances", tt.q.Key(), describe(set))
		}
	}

	for _, tt := range queries {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if set := w.Instances(tt.q); len(set.Instances) == 0 {
					b.Fatal("no instances")
				}
			}
		})
		b.Run(tt.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if set := w.Instances(tt.q); len(set.Instances) == 0 {
						b.Fatal("no instances")
					}
				}
			})
		})
	}
}
