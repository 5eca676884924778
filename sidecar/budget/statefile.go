package budget

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// FileName is the name of the state file in the state directory.
const FileName = "budgets.json"

// stateVersion is the version of the state file's format.
const stateVersion = 1

// maxStateBytes bounds the state file read: a file larger than this is
// not the sidecar's and is ignored.
const maxStateBytes = 1 << 20

// State is the spend of every budget in its current window, as the state
// file keeps it.
type State struct {
	Version int                    `json:"version"`
	Budgets map[string]BudgetState `json:"budgets"`
}

// BudgetState is one budget's spend in the window that starts at
// WindowStart.
type BudgetState struct {
	Window      string    `json:"window"`
	WindowStart time.Time `json:"window_start"`
	Spent       Spend     `json:"spent"`
	Warned      bool      `json:"warned,omitempty"`
	Exceeded    bool      `json:"exceeded,omitempty"`
	Burning     bool      `json:"burning,omitempty"`
}

// Snapshot returns the spend of every agent budget that has an entry, for
// the state file. Shared budgets are left out: their spend lives in Consul
// KV.
func (l *Ledger) Snapshot() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := State{Version: stateVersion, Budgets: make(map[string]BudgetState, len(l.entries))}
	for name, e := range l.entries {
		if l.budgets[name].Shared() {
			continue
		}
		st.Budgets[name] = BudgetState{Window: l.budgets[name].Window.String(), WindowStart: e.start, Spent: e.spent,
			Warned: e.warned, Exceeded: e.exceeded, Burning: e.burning}
	}
	return st
}

// Restore takes the spend of st for every agent budget that has the same window
// and whose window is the current one at now (a file from an older window
// is ignored); it returns the names of the budgets restored. Negative
// counts are taken as 0.
func (l *Ledger) Restore(st State, now time.Time) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var restored []string
	for name, bs := range st.Budgets {
		b, ok := l.budgets[name]
		if !ok || b.Shared() || bs.Window != b.Window.String() || !bs.WindowStart.Equal(WindowStart(now, b.Window)) {
			continue
		}
		spent := Spend{CostUSD: max(bs.Spent.CostUSD, 0), Tokens: max(bs.Spent.Tokens, 0)}
		l.entries[name] = &entry{start: WindowStart(now, b.Window), spent: spent,
			warned: bs.Warned, exceeded: bs.Exceeded, burning: bs.Burning}
		restored = append(restored, name)
	}
	return restored
}

// ReadState reads a state file. A missing file is no error (an empty
// state); a file that is not one the sidecar wrote is.
func ReadState(path string) (State, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, err
	}
	defer f.Close()
	var st State
	dec := json.NewDecoder(&limitedReader{f: f, left: maxStateBytes})
	if err := dec.Decode(&st); err != nil {
		return State{}, fmt.Errorf("%s is not a budget state file: %w", path, err)
	}
	if st.Version != stateVersion {
		return State{}, fmt.Errorf("%s has version %d, this sidecar reads version %d", path, st.Version, stateVersion)
	}
	return st, nil
}

// limitedReader reads at most left bytes and then fails, so that a huge
// file is an error rather than a truncated JSON that happens to parse.
type limitedReader struct {
	f    *os.File
	left int64
}

func (r *limitedReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, errors.New("the file is larger than 1 MiB")
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.f.Read(p)
	r.left -= int64(n)
	return n, err
}

// WriteState writes st to path atomically: a temporary file in the same
// directory, synced, then renamed over path, so that a crash leaves either
// the old file or the new one. The directory is created when missing.
func WriteState(path string, st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, FileName+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename itself survives a crash
		d.Close()
	}
	return nil
}
