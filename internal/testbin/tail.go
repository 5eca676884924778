package testbin

import "sync"

// Tail is an io.Writer that keeps the last limit bytes written to it. A
// program's stdout and stderr may be copied here from separate goroutines.
type Tail struct {
	mu    sync.Mutex
	limit int
	buf   []byte
}

// NewTail returns a Tail keeping the last limit bytes.
func NewTail(limit int) *Tail { return &Tail{limit: limit} }

func (b *Tail) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// String returns everything kept.
func (b *Tail) String() string { return b.Last(b.limit) }

// Last returns the last n bytes kept.
func (b *Tail) Last(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf[max(0, len(b.buf)-n):])
}
