package policies

import (
	"reflect"
	"testing"
)

func TestUpstreamPointingAtOwnListenerIsRefused(t *testing.T) {
	const path = "testdata/invalid/upstream_self.hcl"
	const tail = ": every call to it would come back to the sidecar; give the address of the service itself"
	got := loadDiagnostics(t, path)
	want := Diagnostics{
		{File: path, Line: 15, Column: 3, Key: "upstream.me.url",
			Message: `"http://localhost:7070/call/me" points at this sidecar's own listen.address "127.0.0.1:7070"` + tail},
		{File: path, Line: 19, Column: 3, Key: "upstream.tasks.url",
			Message: `"http://127.0.0.1:7080" points at this sidecar's own ingress.address "0.0.0.0:7080"` + tail},
		{File: path, Line: 23, Column: 3, Key: "upstream.v6.url",
			Message: `"http://[::1]:7080/x" points at this sidecar's own ingress.address "0.0.0.0:7080"` + tail},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestSameListenHost(t *testing.T) {
	for _, tt := range []struct {
		host, lhost string
		want        bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"localhost", "127.0.0.1", true},
		{"127.0.0.2", "localhost", true},
		{"::1", "0.0.0.0", true},
		{"0.0.0.0", "::", true},
		{"LOCALHOST", "", true},
		{"10.0.0.5", "10.0.0.5", true},
		{"10.0.0.5", "127.0.0.1", false},
		{"tools.example.com", "0.0.0.0", false},
		{"127.0.0.1", "10.0.0.5", false},
	} {
		if got := sameListenHost(tt.host, tt.lhost); got != tt.want {
			t.Errorf("sameListenHost(%q, %q) = %v, want %v", tt.host, tt.lhost, got, tt.want)
		}
	}
}

func TestIngressMaxConcurrentMustNotBeNegative(t *testing.T) {
	const path = "testdata/invalid/ingress_max_concurrent.hcl"
	got := loadDiagnostics(t, path)
	want := Diagnostics{{File: path, Line: 8, Column: 3, Key: "ingress.max_concurrent", Message: "must be 0 or more, got -1"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
