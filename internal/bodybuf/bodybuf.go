// Package bodybuf reads bodies that must be held whole (a request kept for
// a retry or a fallback, a model's answer checked before it is passed on)
// into buffers that are used again, so that the bytes a request carries
// cost no garbage collection once the process is warm.
package bodybuf

import (
	"errors"
	"io"
	"math"
	"math/bits"
	"sync"
)

// Buffers come in power-of-two sizes from 1<<minShift to 1<<maxShift;
// larger bodies get buffers of their own.
const (
	minShift = 12 // 4 KiB
	maxShift = 24 // 16 MiB
)

var pools [maxShift - minShift + 1]sync.Pool

// class is the index of the smallest pooled size holding n bytes, or -1.
func class(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	c := bits.Len(uint(n-1)) - minShift
	if c >= len(pools) {
		return -1
	}
	return c
}

func get(n int) []byte {
	c := class(n)
	if c < 0 {
		return make([]byte, 0, n)
	}
	if p, ok := pools[c].Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, 1<<(c+minShift))
}

func put(b []byte) {
	c := cap(b)
	if c < 1<<minShift || c > 1<<maxShift || c&(c-1) != 0 {
		return // not one of the pool's sizes
	}
	b = b[:0]
	pools[class(c)].Put(&b)
}

// Buf is a body read into a pooled buffer. Bytes is valid until Release.
type Buf struct{ b []byte }

// Bytes returns the body.
func (b *Buf) Bytes() []byte {
	if b == nil {
		return nil
	}
	return b.b
}

// Len is the body's length.
func (b *Buf) Len() int { return len(b.Bytes()) }

// Release gives the buffer back; neither Bytes nor anything sliced from it
// may be used afterwards. A nil Buf or a second Release is a no-op.
func (b *Buf) Release() {
	if b == nil || b.b == nil {
		return
	}
	put(b.b)
	b.b = nil
}

// ErrTooLarge is returned by Read when the body is longer than its limit.
var ErrTooLarge = errors.New("bodybuf: body longer than the limit")

// startSize is the first buffer of every body, whatever its declared
// length: a buffer grows (doubling) as the bytes arrive, so that a client
// declaring a large body and sending nothing holds no more than this.
const startSize = 1 << minShift

// Read reads r to its end into a pooled buffer. sizeHint is the expected
// length (a Content-Length; -1 when unknown): it is never allocated ahead
// of the bytes, only used to tell when a full buffer may hold the whole
// body. The buffer starts at 4 KiB and at most doubles each time it fills,
// so it is never more than twice the bytes read (or 4 KiB). A body longer
// than limit returns ErrTooLarge with what was read so far (limit+1
// bytes), so that the caller can still send it on as a stream; other
// errors return no Buf.
func Read(r io.Reader, sizeHint, limit int64) (*Buf, error) {
	most := int(min(limit, math.MaxInt-1)) + 1 // limit+1 bytes tell a body over the limit
	b := get(startSize)
	for {
		if len(b) == cap(b) {
			if int64(len(b)) > limit {
				return &Buf{b: b}, ErrTooLarge
			}
			var one [1]byte
			probed := false
			if sizeHint < 0 || int64(len(b)) >= sizeHint {
				// Full at (or past) the expected length: a body that ends
				// here is told by a one-byte read, without a larger buffer.
				m, err := io.ReadFull(r, one[:])
				if m == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
					return &Buf{b: b}, nil
				}
				if err != nil {
					put(b)
					return nil, err
				}
				probed = true
			}
			nb := get(min(2*cap(b), most))
			nb = append(nb, b...)
			put(b)
			b = nb
			if probed {
				b = append(b, one[0])
			}
			continue
		}
		m, err := r.Read(b[len(b):min(cap(b), most)])
		b = b[:len(b)+m]
		if int64(len(b)) > limit {
			return &Buf{b: b}, ErrTooLarge
		}
		if err == io.EOF {
			return &Buf{b: b}, nil
		}
		if err != nil {
			put(b)
			return nil, err
		}
	}
}
