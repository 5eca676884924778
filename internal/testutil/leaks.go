package testutil

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// MainWithoutLeaks runs a package's tests (call it from TestMain) and
// fails the package when they leave goroutines behind. Idle connections
// pooled in http.DefaultTransport by tests using its default client are
// closed first: that pool lives as long as the process.
func MainWithoutLeaks(m *testing.M) {
	code := m.Run()
	if code == 0 {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
