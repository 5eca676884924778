//go:build e2e

package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeControlAPI answers the control API paths the CLI commands use.
func fakeControlAPI(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"agent":{"name":"writer","id":"writer-1"},"health":{"state":"healthy","reported":"ok"}}`))
	})
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"status":"ok","version":"test"}`))
	})
	mux.HandleFunc("POST /v1/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"state":"healthy"}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// SIDECAR_ADDR is taken as CONSUL_HTTP_ADDR is: host:port, or a URL.
func TestSidecarAddrForms(t *testing.T) {
	srv := fakeControlAPI(t)
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	forms := []string{hostPort, "http://" + hostPort, "http://" + hostPort + "/", hostPort + "/"}
	commands := [][]string{{"status"}, {"status", "-json"}, {"health"}, {"heartbeat", "-q"}}
	for _, addr := range forms {
		for _, args := range commands {
			t.Run(addr+" "+strings.Join(args, " "), func(t *testing.T) {
				out, errOut, code := runCLI(t, []string{"SIDECAR_ADDR=" + addr}, args...)
				if code != exitOK {
					t.Fatalf("exit %d: %s%s", code, out, errOut)
				}
			})
			t.Run("-addr "+addr+" "+strings.Join(args, " "), func(t *testing.T) {
				flags := append([]string{args[0], "-addr", addr}, args[1:]...)
				out, errOut, code := runCLI(t, []string{"SIDECAR_ADDR="}, flags...)
				if code != exitOK {
					t.Fatalf("exit %d: %s%s", code, out, errOut)
				}
			})
		}
	}
}

// An address that is neither host:port nor an http(s) URL is a usage
// error that says which forms work; an https address is taken (and here
// nothing answers it).
func TestSidecarAddrRejected(t *testing.T) {
	for _, cmd := range []string{"status", "health", "heartbeat"} {
		for _, addr := range []string{"ftp://127.0.0.1:7070", "127.0.0.1", "http://", "http://127.0.0.1:7070?x=1"} {
			t.Run(cmd+" "+addr, func(t *testing.T) {
				_, errOut, code := runCLI(t, []string{"SIDECAR_ADDR=" + addr}, cmd)
				if code != exitUsage || !strings.Contains(errOut, "host:port or http(s)://host:port") {
					t.Fatalf("exit %d, want %d with the accepted forms: %s", code, exitUsage, errOut)
				}
			})
		}
		t.Run(cmd+" https", func(t *testing.T) {
			_, errOut, code := runCLI(t, []string{"SIDECAR_ADDR=https://127.0.0.1:1"}, cmd)
			if code != exitUnreachable {
				t.Fatalf("exit %d, want %d (unreachable): %s", code, exitUnreachable, errOut)
			}
		})
	}
}
