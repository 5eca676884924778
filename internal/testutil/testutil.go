// Package testutil holds the small helpers the end-to-end tests of several
// packages share: a buffer processes can write to while a test reads it,
// and a free port that outgoing connections cannot take.
package testutil

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer that a process (or a server's goroutines)
// and a test may use at the same time.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreePort picks a free port on 127.0.0.1 below Linux's ephemeral range
// (32768+): a port the kernel handed out with ":0" can be taken as the
// local port of an outgoing connection (of tests running beside this one)
// before the process under test binds it; one outside the range cannot.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port found in 20000-31999")
	return 0
}
