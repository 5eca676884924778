package discovery_test

import (
	"context"
	"testing"

	"github.com/agent-sidecar/sidecar/discovery"
	"github.com/agent-sidecar/sidecar/internal/consultest"
)

func TestKVCheckAndSet(t *testing.T) {
	agent := consultest.Start(t)
	c, err := discovery.NewClient(discovery.Config{Address: agent.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const key = "sidecar/fleet/budgets/writer/daily"

	// Given a key that does not exist
	if _, idx, found, err := c.KVGet(ctx, key); err != nil || found || idx != 0 {
		t.Fatalf("KVGet of a missing key = index %d, found %v, error %v; want 0, false, nil", idx, found, err)
	}
	// When two writers both create it, only the first succeeds
	if ok, err := c.KVCAS(ctx, key, []byte("a"), 0); !ok || err != nil {
		t.Fatalf("first create = %v, %v; want true, nil", ok, err)
	}
	if ok, err := c.KVCAS(ctx, key, []byte("b"), 0); ok || err != nil {
		t.Fatalf("second create = %v, %v; want false, nil (the key exists)", ok, err)
	}
	val, idx, found, err := c.KVGet(ctx, key)
	if err != nil || !found || string(val) != "a" || idx == 0 {
		t.Fatalf("KVGet = %q, index %d, found %v, error %v; want \"a\", an index, true, nil", val, idx, found, err)
	}
	// Then a write with the index read wins once, and a stale index loses
	if ok, err := c.KVCAS(ctx, key, []byte("c"), idx); !ok || err != nil {
		t.Fatalf("write at the index read = %v, %v; want true, nil", ok, err)
	}
	if ok, err := c.KVCAS(ctx, key, []byte("d"), idx); ok || err != nil {
		t.Fatalf("write at a stale index = %v, %v; want false, nil", ok, err)
	}
	if val, _, _, _ := c.KVGet(ctx, key); string(val) != "c" {
		t.Errorf("value = %q, want \"c\"", val)
	}
}
