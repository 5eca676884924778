//go:build !race

// The race detector makes sync.Pool drop buffers at random, so this test
// runs without it.

package bodybuf

import (
	"bytes"
	"runtime"
	"testing"
)

// Once warm, reading a body allocates nothing in proportion to its size:
// the buffer comes back from the pool. Bodies of exactly a pooled size
// (256 KiB) and just above it (one byte more) are both checked.
func TestBuffersAreUsedAgain(t *testing.T) {
	for _, size := range []int{256 << 10, 256<<10 + 1} {
		src := body(size)
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
		const runs = 50
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		for range runs {
			read()
		}
		runtime.ReadMemStats(&m1)
		if per := (m1.TotalAlloc - m0.TotalAlloc) / runs; per > 1<<10 {
			t.Errorf("%d-byte body: %d bytes allocated per read once warm, want under 1 KiB", size, per)
		}
	}
}
