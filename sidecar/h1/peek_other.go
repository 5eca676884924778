//go:build !unix

package h1

import "net"

// peekIdle cannot look at the socket here; a connection the server closed
// is found when the request is sent, and the request is sent again.
func peekIdle(net.Conn) bool { return true }
