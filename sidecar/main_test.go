package sidecar

import (
	"testing"

	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// TestMain fails the package when its tests leave goroutines behind once
// everything they started has stopped (sidecars, watchers, notifiers,
// probes, supervisors, proxied calls, event streams, test servers and
// clients). Tests that start a sidecar check their own goroutines too
// (testutil.VerifyNoLeaks).
func TestMain(m *testing.M) { testutil.MainWithoutLeaks(m) }
