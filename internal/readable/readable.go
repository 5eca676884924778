// Package readable words durations and network errors for people: status
// output, check outputs, error messages and logs.
package readable

import (
	"errors"
	"net"
	"net/url"
	"syscall"
	"time"
)

// Duration rounds a duration for people: to the millisecond below a
// second, to a tenth of a second below a minute, to the second above.
func Duration(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}

// NetError says in a few words why a connection failed, without the URL
// (which may carry credentials): "connection refused", "dial: …".
func NetError(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Op + ": " + op.Err.Error()
	}
	return WithoutURL(err)
}

// WithoutURL is the text of err without the URL a *url.Error names.
func WithoutURL(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
