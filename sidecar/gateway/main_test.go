package gateway

import (
	"os"
	"testing"

	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// TestMain fails the package when its tests leave goroutines behind once
// everything they started has stopped (proxied calls, model streams,
// timers).
//
// HTTP_PROXY points at testProxy for the whole package (net/http reads it
// once): models on loopback are never proxied, so only the test that calls
// a model elsewhere reaches it.
func TestMain(m *testing.M) {
	testProxy = newRecordingProxy()
	os.Setenv("HTTP_PROXY", testProxy.srv.URL)
	testutil.MainWithoutLeaks(m, testProxy.srv.Close)
}
