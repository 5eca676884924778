//go:build !race

// The race detector makes sync.Pool drop buffers at random, so this test
// runs without it.

package bodybuf

import (
	"bytes"
	"testing"
)

// Once warm, reading a body allocates nothing in proportion to its size:
// the buffer comes back from the pool.
func TestBuffersAreUsedAgain(t *testing.T) {
	src := body(256 << 10)
	r := bytes.NewReader(src)
	read := func() {
		r.Reset(src)
		b, err := Read(r, int64(len(src)), 1<<20)
		if err != nil || b.Len() != len(src) {
			t.Fatal(b.Len(), err)
		}
		b.Release()
	}
	read()
	avg := testing.AllocsPerRun(50, read)
	if avg > 2 {
		t.Errorf("%.1f allocations per read of a warm 256 KiB body, want at most 2 (the Buf and its pool slot)", avg)
	}
}
