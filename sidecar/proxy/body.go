package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/agent-sidecar/sidecar/internal/bodybuf"
)

// maxReplayBody is the largest request body kept in memory so that a call
// can be retried on another instance or sent to a fallback. A larger body is
// streamed once, without retries.
const maxReplayBody = 2 << 20

// replayBody holds a request body: whole when it fits in maxReplayBody
// (then it can be sent again), else a stream that can be sent once.
type replayBody struct {
	buf    *bodybuf.Buf // the whole body, in a pooled buffer
	stream io.Reader    // nil when buf holds the whole body
	mu     sync.Mutex
	read   bool // the stream has been (partly) consumed
}

// readReplayBody reads a request body up to the replay limit into a
// pooled buffer; release gives it back once the call is over.
func readReplayBody(r *http.Request) (*replayBody, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, nil
	}
	if r.ContentLength > maxReplayBody {
		return &replayBody{stream: r.Body}, nil
	}
	buf, err := bodybuf.Read(r.Body, r.ContentLength, maxReplayBody)
	if errors.Is(err, bodybuf.ErrTooLarge) {
		// Streamed once from what was read on; buf is kept (not released)
		// because the stream reads from it.
		return &replayBody{stream: io.MultiReader(bytes.NewReader(buf.Bytes()), r.Body)}, nil
	}
	if err != nil {
		return nil, err
	}
	return &replayBody{buf: buf}, nil
}

// release gives the body's buffer back. The call must be over: the call
// transport (package h1) has finished reading every attempt's body when
// RoundTrip returns an error or the answer's body is closed.
func (b *replayBody) release() {
	if b != nil {
		b.buf.Release()
	}
}

// replayable reports whether the body can be sent more than once.
func (b *replayBody) replayable() bool {
	if b == nil || b.stream == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.read
}

// attach sets the body of an outgoing request.
func (b *replayBody) attach(out *http.Request) {
	if b == nil {
		out.Body, out.ContentLength, out.GetBody = http.NoBody, 0, nil
		return
	}
	if b.stream == nil {
		buf := b.buf.Bytes()
		out.ContentLength = int64(len(buf))
		out.Body = io.NopCloser(bytes.NewReader(buf))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
		return
	}
	out.Body, out.GetBody = &onceReader{b: b}, nil
}

// onceReader reads the stream of a large body and notes that it did; its
// Close does not close the stream, so a body nobody read can still be sent
// elsewhere.
type onceReader struct{ b *replayBody }

func (o *onceReader) Read(p []byte) (int, error) {
	o.b.mu.Lock()
	o.b.read = true
	o.b.mu.Unlock()
	return o.b.stream.Read(p)
}
func (o *onceReader) Close() error { return nil }
