package h1

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzAgainstNetHTTP has a scripted server answer two GETs with arbitrary
// bytes (each answer in two writes, split where the input says; over TLS
// two records) and any later request with a well-formed numbered answer.
// h1 and net/http's Transport, each against its own copy of the server,
// must agree on every request: the same status and body, or both fail.
// So h1 never hangs where net/http does not, and never hands a later
// request an earlier answer's bytes.
func FuzzAgainstNetHTTP(f *testing.F) {
	type seed struct {
		first, second string
		split         int // where the first answer is cut in two writes
		tls           bool
	}
	one := answer("one")
	stale := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale"
	seeds := []seed{
		{one, answer("two"), 0, false},
		{one, answer("two"), 10, true},
		{one + stale, answer("two"), len(one), true}, // two TLS records
		{one + stale, answer("two"), 0, true},
		{one + stale, answer("two"), len(one), false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n0\r\n\r\n", answer("two"), 30, false},
		{"HTTP/1.1 200 OK\r\n\r\nuntil the end", answer("two"), 0, true},
		{"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\none", answer("two"), 0, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "", 0, false},
		{"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + one, "garbage\r\n\r\n", 5, true},
		{strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 7) + one, answer("two"), 0, false},
		{"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\none", answer("two"), 0, false},
		{"HTTP/1.1 304 Not Modified\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\ntwo", 0, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n0\r\n\r\n", answer("two"), 0, false},
		{"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\nrest", answer("two"), 0, false},
		{"HTTP/1.1 101 Switching Protocols\r\n\r\n", answer("two"), 0, true},
		{"HTTP/1.1 101 Switching Protocols\r\n\r\nrest", answer("two"), 0, false}, // no Upgrade: not a switch
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nrest", answer("two"), 0, false},
		{one, "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("y", 2<<20) + "\r\n\r\n", 0, false},
	}
	for _, s := range seeds {
		f.Add([]byte(s.first), []byte(s.second), uint16(s.split), s.tls)
	}
	f.Fuzz(func(t *testing.T, first, second []byte, split uint16, useTLS bool) {
		script := [][]byte{first, second}
		serve := func(n int, c *scriptConn, req *http.Request) bool {
			if n >= len(script) {
				return numbered(n, c, req)
			}
			b := script[n]
			at := int(split) % (len(b) + 1)
			_, _ = c.Write(b[:at])
			_, _ = c.Write(b[at:])
			return true
		}
		got := map[string][]outcome{}
		for name, rt := range clientsUnderTest(t) {
			s := newScriptServer(t, useTLS, serve)
			s.idle = 50 * time.Millisecond
			for range script {
				got[name] = append(got[name], getOutcome(rt, s.URL))
				// Lets net/http's reading goroutine look at the idle
				// connection before the next request takes it (see
				// stdRace in the side-by-side test).
				time.Sleep(time.Millisecond)
			}
			s.Close()
		}
		for i := range script {
			if a, b := got["h1"][i], got["net-http"][i]; a != b {
				t.Fatalf("request %d: h1 %s, net/http %s", i, a, b)
			}
		}
	})
}

// outcome is what a caller sees of one exchange.
type outcome struct {
	failed bool
	status int
	body   string
}

func (o outcome) String() string {
	if o.failed {
		return "failed"
	}
	return fmt.Sprintf("%d %s", o.status, clip(o.body))
}

func getOutcome(rt http.RoundTripper, url string) outcome {
	status, body, err := exchange(rt, url, step{method: http.MethodGet})
	if err != nil {
		return outcome{failed: true}
	}
	return outcome{status: status, body: body}
}
