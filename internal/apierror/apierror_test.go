package apierror

import (
	"net/http/httptest"
	"testing"
)

func TestWriteAnswersInTheSidecarsErrorShape(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, 503, "unavailable", `nothing "healthy" <now>`)
	if rec.Code != 503 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	want := `{"error":{"type":"unavailable","message":"nothing \"healthy\" \u003cnow\u003e"}}`
	if got := rec.Body.String(); got != want {
		t.Fatalf("body %s, want %s", got, want)
	}
}

func TestWriteTracedCarriesTheTraceIDOnlyWhenThereIsOne(t *testing.T) {
	for _, tc := range []struct {
		name, traceID, want string
	}{
		{"with a trace id", "4bf92f3577b34da6a3ce929d0e0e4736",
			`{"error":{"type":"unavailable","message":"down","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}}`},
		{"without: the same bytes as Write", "", `{"error":{"type":"unavailable","message":"down"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteTraced(rec, 503, "unavailable", "down", tc.traceID)
			if rec.Code != 503 || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			if got := rec.Body.String(); got != tc.want {
				t.Fatalf("body %s, want %s", got, tc.want)
			}
		})
	}
}
