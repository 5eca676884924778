package outcome

import "testing"

// The label values are part of the metrics users scrape: they never change.
func TestLabelValues(t *testing.T) {
	want := map[Outcome]string{Success: "success", Fallback: "fallback", Failure: "failure", Rejected: "rejected"}
	if len(want) != Count || len(All) != Count {
		t.Fatalf("%d outcomes listed, Count is %d", len(want), Count)
	}
	for i, o := range All {
		if int(o) != i {
			t.Errorf("All[%d] is %d", i, o)
		}
		if got := o.String(); got != want[o] {
			t.Errorf("%d.String() = %q, want %q", o, got, want[o])
		}
	}
	if got := Outcome(Count).String(); got != "unknown" {
		t.Errorf("an outcome out of range reads %q", got)
	}
}

func TestAnswered(t *testing.T) {
	for o, want := range map[Outcome]bool{Success: true, Fallback: true, Failure: false, Rejected: false} {
		if got := o.Answered(); got != want {
			t.Errorf("%s.Answered() = %v, want %v", o, got, want)
		}
	}
}
