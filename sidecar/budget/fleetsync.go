package budget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// KV is the check-and-set store of the service totals; discovery.Client
// implements it against Consul KV.
type KV interface {
	// KVGet reads key: its value, ModifyIndex and whether it exists.
	KVGet(ctx context.Context, key string) (value []byte, modifyIndex uint64, found bool, err error)
	// KVCAS writes value at key if its ModifyIndex is still modifyIndex
	// (0: if it does not exist); false when someone else wrote first.
	KVCAS(ctx context.Context, key string, value []byte, modifyIndex uint64) (bool, error)
}

// SyncAttempts bounds the read-add-write rounds of one Sync when other
// sidecars keep writing the same total in between.
const SyncAttempts = 5

// maxTotalBytes bounds a total read from KV: a larger value is not the
// sidecar's and counts as zero.
const maxTotalBytes = 4096

// ErrConflict is Sync giving up after SyncAttempts rounds lost to other
// sidecars; the spend is kept for the next sync.
var ErrConflict = errors.New("other sidecars of the service kept writing the budget's total in Consul KV; " +
	"the spend is kept and added at the next sync")

// Key is the Consul KV key of a shared budget's total: under the fleet
// prefix, by service (agent.name) and budget name.
func Key(fleetPrefix, service, budget string) string {
	return fleetPrefix + "budgets/" + service + "/" + budget
}

// Total is the value kept at Key: the service's spend in the window that
// starts at WindowStart.
type Total struct {
	WindowStart time.Time `json:"window_start"`
	Window      string    `json:"window"`
	Tokens      int64     `json:"tokens"`
	CostUSD     float64   `json:"cost_usd"`
	Updated     time.Time `json:"updated"`
}

// parseTotal reads the total of p's window from a KV value: a value of
// another window, or one that is not a total, counts as zero (and is
// replaced at the next write). later reports a total of a later window:
// another sidecar has moved on, so p's window has ended.
func parseTotal(value []byte, p Pending) (s Spend, later bool) {
	var t Total
	if len(value) > maxTotalBytes || json.Unmarshal(value, &t) != nil || t.Window != p.Window.String() {
		return Spend{}, false
	}
	switch {
	case t.WindowStart.After(p.WindowStart):
		return Spend{}, true
	case !t.WindowStart.Equal(p.WindowStart):
		return Spend{}, false
	}
	return Spend{Tokens: max(t.Tokens, 0), CostUSD: max(t.CostUSD, 0)}, false
}

// Sync adds p.Delta to the service's total at key with check-and-set, and
// returns the total that now holds it: it reads the total, adds, and
// writes only if no other sidecar wrote in between, else reads again (at
// most SyncAttempts times, then ErrConflict). With nothing to add it only
// reads. Once the total in KV belongs to a later window, p's window has
// ended: its delta is dropped and the total returned is zero.
func Sync(ctx context.Context, kv KV, key string, p Pending, now time.Time) (Spend, error) {
	for range SyncAttempts {
		value, index, found, err := kv.KVGet(ctx, key)
		if err != nil {
			return Spend{}, err
		}
		total, later := parseTotal(value, p)
		if later {
			return Spend{}, nil
		}
		if p.Delta == (Spend{}) {
			return total, nil
		}
		total = total.plus(p.Delta)
		b, err := json.Marshal(Total{WindowStart: p.WindowStart.UTC(), Window: p.Window.String(), Tokens: total.Tokens,
			CostUSD: total.CostUSD, Updated: now.UTC()})
		if err != nil {
			return Spend{}, fmt.Errorf("encoding the budget total: %w", err)
		}
		if !found {
			index = 0
		}
		ok, err := kv.KVCAS(ctx, key, b, index)
		if err != nil {
			return Spend{}, err
		}
		if ok {
			return total, nil
		}
	}
	return Spend{}, ErrConflict
}
