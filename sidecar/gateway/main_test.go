package gateway

import (
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package when its tests leave goroutines behind once
// everything they started has stopped (watchers, notifiers, probes,
// supervisors, proxied calls, model streams, timers). The test clients'
// idle keep-alive connections are closed first.
//
// HTTP_PROXY points at testProxy for the whole package (net/http reads it
// once): models on loopback are never proxied, so only the test that calls
// a model elsewhere reaches it.
func TestMain(m *testing.M) {
	testProxy = newRecordingProxy()
	os.Setenv("HTTP_PROXY", testProxy.srv.URL)
	code := m.Run()
	testProxy.srv.Close()
	if code == 0 {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		// Connections the servers closed end their goroutines shortly
		// after: look again for a few seconds before calling it a leak.
		err := goleak.Find()
		for i := 0; err != nil && i < 10; i++ {
			time.Sleep(300 * time.Millisecond)
			http.DefaultTransport.(*http.Transport).CloseIdleConnections()
			err = goleak.Find()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
