package testutil

import (
	"fmt"
	"testing"
)

// TBRecorder is a testing.TB that records how the code under test would end
// the test (Fatal, Fatalf, Skip, Skipf) instead of ending it, for tests of
// test fixtures. The code goes on after such a call, so it must return
// after it as usual. Everything else goes to the embedded TB.
type TBRecorder struct {
	testing.TB
	FatalMsg, SkipMsg string // the last message of each kind, "" when none
}

func (r *TBRecorder) Helper()                   {}
func (r *TBRecorder) Fatal(args ...any)         { r.FatalMsg = fmt.Sprint(args...) }
func (r *TBRecorder) Fatalf(f string, a ...any) { r.FatalMsg = fmt.Sprintf(f, a...) }
func (r *TBRecorder) Skip(args ...any)          { r.SkipMsg = fmt.Sprint(args...) }
func (r *TBRecorder) Skipf(f string, a ...any)  { r.SkipMsg = fmt.Sprintf(f, a...) }
