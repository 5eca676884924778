package readable

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1234567 * time.Nanosecond:             "1ms",
		1260 * time.Millisecond:               "1.3s",
		61400 * time.Millisecond:              "1m1s",
		2 * time.Minute:                       "2m0s",
		200 * time.Millisecond:                "200ms",
		59*time.Second + 960*time.Millisecond: "1m0s",
	} {
		if got := Duration(d).String(); got != want {
			t.Errorf("Duration(%s) = %s, want %s", d, got, want)
		}
	}
}

func TestNetErrorKeepsURLsOut(t *testing.T) {
	secretURL := "https://user:s3cret@example.com/v1?key=s3cret"
	refused := &url.Error{Op: "Get", URL: secretURL, Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	for err, want := range map[error]string{
		refused: "connection refused",
		&url.Error{Op: "Get", URL: secretURL, Err: &net.OpError{Op: "read", Err: errors.New("i/o timeout")}}:      "read: i/o timeout",
		fmt.Errorf("wrapped: %w", &url.Error{Op: "Get", URL: secretURL, Err: errors.New("tls: bad certificate")}): "tls: bad certificate",
		errors.New("plain"): "plain",
	} {
		if got := NetError(err); got != want {
			t.Errorf("NetError(%v) = %q, want %q", err, got, want)
		}
	}
}
