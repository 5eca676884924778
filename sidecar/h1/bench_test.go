package h1

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRoundTrip compares this package's Transport with net/http's,
// one request at a time on a kept-alive connection, for a GET, a POST with
// a 600-byte body (the size of a typical tool call, written in the calling
// goroutine) and one with 64 KiB (written by a goroutine of its own while
// the answer is read), plain and over TLS. Besides the time per request it reports the process's CPU
// time per request (client and the same server for both).
func BenchmarkRoundTrip(b *testing.B) {
	answer := strings.Repeat("x", 600)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, answer)
	})
	plain := httptest.NewServer(handler)
	defer plain.Close()
	secure := httptest.NewTLSServer(handler)
	defer secure.Close()
	roots := secure.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	bodies := []struct {
		name string
		size int
	}{{"GET", 0}, {"POST-600B", 600}, {"POST-64KiB", 64 << 10}}

	for _, srv := range []struct{ name, url string }{{"plain", plain.URL}, {"tls", secure.URL}} {
		for _, bd := range bodies {
			payload := bytes.Repeat([]byte("p"), bd.size)
			for _, tr := range []struct {
				name string
				rt   http.RoundTripper
			}{
				{"h1", &Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}},
				{"net-http", &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableCompression: true}},
			} {
				b.Run(srv.name+"/"+bd.name+"/"+tr.name, func(b *testing.B) {
					call := func() {
						method, body := http.MethodGet, io.Reader(nil)
						if bd.size > 0 {
							method, body = http.MethodPost, bytes.NewReader(payload)
						}
						req, _ := http.NewRequest(method, srv.url, body)
						resp, err := tr.rt.RoundTrip(req)
						if err != nil {
							b.Fatal(err)
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						_ = resp.Body.Close()
					}
					call() // dial and handshake outside the measurement
					c0 := cpuTime()
					b.ResetTimer()
					for range b.N {
						call()
					}
					b.StopTimer()
					b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N)/1e3, "cpu-µs/op")
					tr.rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
				})
			}
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
