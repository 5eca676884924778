package bodybuf

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func body(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

func TestReadWholeBodies(t *testing.T) {
	for _, n := range []int{0, 1, 511, 512, 4095, 4096, 4097, 100 << 10, 1 << 20, 20 << 20} {
		want := body(n)
		for _, hint := range []int64{-1, int64(n), int64(n / 2), int64(n * 2)} {
			// A one-byte-at-a-time reader for small bodies checks the growth
			// path; larger ones are read as they come.
			var r io.Reader = bytes.NewReader(want)
			if n < 10000 {
				r = iotest.OneByteReader(r)
			}
			b, err := Read(r, hint, 32<<20)
			if err != nil {
				t.Fatalf("%d bytes, hint %d: %v", n, hint, err)
			}
			if !bytes.Equal(b.Bytes(), want) || b.Len() != n {
				t.Fatalf("%d bytes, hint %d: read %d bytes, not the body", n, hint, b.Len())
			}
			b.Release()
			b.Release() // a second Release does nothing
			if b.Bytes() != nil {
				t.Fatal("Bytes after Release")
			}
		}
	}
}

func TestTooLarge(t *testing.T) {
	for _, hint := range []int64{-1, 100, 5000} {
		b, err := Read(bytes.NewReader(body(5000)), hint, 1000)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("hint %d: err = %v, want ErrTooLarge", hint, err)
		}
		// What was read is kept, so the body can still be streamed on.
		if b.Len() != 1001 || !bytes.Equal(b.Bytes(), body(1001)) {
			t.Fatalf("hint %d: kept %d bytes, want the first 1001", hint, b.Len())
		}
		b.Release()
	}
	// A body of exactly the limit is not too large.
	b, err := Read(bytes.NewReader(body(1000)), -1, 1000)
	if err != nil || b.Len() != 1000 {
		t.Fatalf("body at the limit: %d bytes, %v", b.Len(), err)
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("connection reset")
	b, err := Read(io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(boom)), -1, 1<<20)
	if !errors.Is(err, boom) || b != nil {
		t.Fatalf("got %v, %v; want the reader's error and no buffer", b, err)
	}
}

func TestClass(t *testing.T) {
	for _, c := range []struct{ n, class int }{{0, 0}, {4096, 0}, {4097, 1}, {8192, 1}, {1 << 24, 12}, {1<<24 + 1, -1}} {
		if got := class(c.n); got != c.class {
			t.Errorf("class(%d) = %d, want %d", c.n, got, c.class)
		}
	}
}

// offerWatcher is a body that arrives in pieces of 1000 bytes and records
// the first Read offered more room than the body's growth allows: a buffer
// (bytes received plus room offered) over 4 KiB and over twice the bytes
// received.
type offerWatcher struct {
	src      []byte
	received int
	// tooBig is the first buffer too big, and atReceived the bytes
	// received when it was offered.
	tooBig, atReceived int
}

func (o *offerWatcher) Read(p []byte) (int, error) {
	if total := o.received + len(p); total > max(4<<10, 2*o.received) && o.tooBig == 0 {
		o.tooBig, o.atReceived = total, o.received
	}
	if o.received == len(o.src) {
		return 0, io.EOF
	}
	n := copy(p, o.src[o.received:min(len(o.src), o.received+1000)])
	o.received += n
	return n, nil
}

// A body declared large gets room as its bytes arrive: the first buffer is
// small whatever the Content-Length says, and no buffer is ever more than
// twice the bytes received (or the 4 KiB start).
func TestBufferGrowsAsBytesArrive(t *testing.T) {
	for _, c := range []struct {
		declared int64
		sent     int
	}{{10 << 20, 0}, {10 << 20, 1}, {10 << 20, 100 << 10}, {1 << 20, 1 << 20}, {-1, 300 << 10}} {
		o := &offerWatcher{src: body(c.sent)}
		b, err := Read(o, c.declared, 16<<20)
		if err != nil || b.Len() != c.sent {
			t.Fatalf("declared %d, sent %d: read %d bytes, %v", c.declared, c.sent, b.Len(), err)
		}
		b.Release()
		if o.tooBig != 0 {
			t.Errorf("declared %d, sent %d: a buffer of %d bytes was offered after %d bytes had arrived",
				c.declared, c.sent, o.tooBig, o.atReceived)
		}
	}
}
