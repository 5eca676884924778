package breaker

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/agent-sidecar/sidecar/internal/readable"
)

// Classify says whether a call failed, and why, in a few words:
//   - an error (connect error, reset, timeout) is a failure, e.g.
//     "connection refused", "timeout", "connection reset";
//   - a status in FailureStatuses is a failure, e.g. "503"; other statuses,
//     other 4xx included (the caller's fault), are not;
//   - a call slower than SlowCall (when set) is a failure, e.g. "slow: 46s".
//
// It allocates nothing for a successful call, nor for a failure status.
func (b *Breaker) Classify(status int, err error, latency time.Duration) (failure bool, reason string) {
	switch {
	case err != nil:
		return true, errorReason(err)
	case b.cfg.IsFailureStatus(status):
		return true, statusReason(status)
	case b.cfg.SlowCall > 0 && latency > b.cfg.SlowCall:
		return true, "slow: " + readable.Duration(latency).String()
	}
	return false, ""
}

// statusReasons holds "100" to "599", so a failure status costs no
// allocation.
var statusReasons = func() (t [600]string) {
	for c := 100; c < len(t); c++ {
		t[c] = strconv.Itoa(c)
	}
	return t
}()

func statusReason(status int) string {
	if status >= 100 && status < len(statusReasons) {
		return statusReasons[status]
	}
	return strconv.Itoa(status)
}

// errnoReasons maps system errors of a broken connection to their reasons.
var errnoReasons = []struct {
	errno  syscall.Errno
	reason string
}{
	{syscall.ECONNREFUSED, "connection refused"},
	{syscall.ECONNRESET, "connection reset"},
	{syscall.ECONNABORTED, "connection aborted"},
	{syscall.EPIPE, "broken pipe"},
	{syscall.EHOSTUNREACH, "host unreachable"},
	{syscall.ENETUNREACH, "network unreachable"},
	{syscall.ETIMEDOUT, "timeout"},
}

// maxErrorReason caps the length of a reason taken from an error's text.
const maxErrorReason = 80

// errorReason derives a short reason from a call's error.
func errorReason(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection closed"
	}
	for _, e := range errnoReasons {
		if errors.Is(err, e.errno) {
			return e.reason
		}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return "no such host"
		}
		if dnsErr.IsTimeout {
			return "dns timeout"
		}
		return "dns lookup failed"
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "timeout"
	}
	var certErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	if errors.As(err, &certErr) || errors.As(err, &recordErr) {
		return "tls handshake failed"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return "connect failed"
	}
	// Otherwise the innermost message, which wrapping puts last.
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
		msg = msg[i+2:]
	}
	if len(msg) > maxErrorReason {
		n := maxErrorReason
		for n > 0 && !utf8.RuneStart(msg[n]) {
			n--
		}
		msg = msg[:n] + "…"
	}
	return msg
}
