package discovery

import "testing"

func TestInstanceScheme(t *testing.T) {
	for _, tt := range []struct {
		meta map[string]string
		want string
	}{
		{nil, "http"},
		{map[string]string{MetaScheme: "https"}, "https"},
		{map[string]string{MetaScheme: " HTTPS "}, "https"},
		{map[string]string{MetaScheme: "http"}, "http"},
		{map[string]string{MetaScheme: "ftp"}, "http"},
		{map[string]string{"scheme": "https"}, "http"},
	} {
		if got := (Instance{Meta: tt.meta}).Scheme(); got != tt.want {
			t.Errorf("meta %v: scheme %q, want %q", tt.meta, got, tt.want)
		}
	}
}
