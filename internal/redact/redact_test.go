package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"https://hooks.example.com", "https://hooks.example.com"},
		{"https://hooks.example.com/", "https://hooks.example.com"},
		{"https://hooks.example.com:8443/services/T0/B0/s3cret", "https://hooks.example.com:8443/<redacted>"},
		{"https://u:s3cret@hooks.example.com", "https://hooks.example.com/<redacted>"},
		{"https://hooks.example.com?token=s3cret", "https://hooks.example.com/<redacted>"},
		{"https://hooks.example.com#s3cret", "https://hooks.example.com/<redacted>"},
		{"http://[::1]:8081/healthz/s3cret", "http://[::1]:8081/<redacted>"},
		// Mistyped URLs, as a validation error shows them.
		{"hooks.example.com/services/s3cret", "hooks.example.com/<redacted>"},
		{"hooks.example.com:443/services/s3cret", "hooks.example.com:443/<redacted>"},
		{"htps://hooks.example.com/services/s3cret?k=s3cret", "htps://hooks.example.com/<redacted>"},
		{"https//hooks.example.com/s3cret", "https/<redacted>"},
		{"https:/hooks.example.com/s3cret", "/<redacted>"},
		{"https:///services/s3cret", "https:///<redacted>"},
		{"u:s3cret@hooks.example.com/x", "hooks.example.com/<redacted>"},
		{"https://u:s3c/ret@hooks.example.com/x", "https:///<redacted>"},
		{"https://hooks.example.com/%zz/s3cret", "https://hooks.example.com/<redacted>"},
		{"https://hooks example.com/s3cret", "https://hooks example.com/<redacted>"},
		{"mailto:s3cret@example.com", "example.com/<redacted>"},
		{"127.0.0.1:8081", "127.0.0.1:8081"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := URL(tt.in)
			if got != tt.want {
				t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if strings.Contains(got, "s3c") {
				t.Errorf("URL(%q) = %q shows a secret", tt.in, got)
			}
		})
	}
}

func TestCommand(t *testing.T) {
	if got := Command([]string{"python3", "agent.py", "--key=s3cret"}); len(got) != 1 || got[0] != "python3" {
		t.Errorf("got %q, want the program only", got)
	}
	if got := Command(nil); got == nil || len(got) != 0 {
		t.Errorf("got %#v, want an empty list", got)
	}
}
