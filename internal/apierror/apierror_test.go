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
