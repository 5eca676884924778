package h1

// CloseIdleTo closes the kept-alive connections to addr (host:port), over
// http and https, and forgets the address, so a pool serving instances that
// come and go does not keep an entry for each one that left.
func (t *Transport) CloseIdleTo(addr string) {
	var closing []*conn
	t.mu.Lock()
	for _, scheme := range []string{"http", "https"} {
		key := scheme + "://" + addr
		cs, ok := t.idle[key]
		if !ok {
			continue
		}
		closing = append(closing, cs...)
		t.nidle -= len(cs)
		delete(t.idle, key)
	}
	t.mu.Unlock()
	for _, c := range closing {
		c.close()
	}
}
