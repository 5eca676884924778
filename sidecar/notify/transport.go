package notify

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"time"
)

// dialer connects to webhooks.
var dialer = &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}

// NewTransport is the client of notification webhooks: TLS 1.2 or later
// against roots (nil: the system's), no proxy from the environment. The
// sidecar closes its idle connections on shutdown.
func NewTransport(roots *x509.CertPool) *http.Transport {
	return &http.Transport{
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
	}
}
