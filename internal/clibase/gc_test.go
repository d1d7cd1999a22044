package clibase

import (
	"runtime/debug"
	"testing"
)

// TestRangeGC: a range collects at 200 % until it reports more than
// rangeGCMax commits, then at 25 %, and passes every report on.
func TestRangeGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	var got [][2]int
	next := func(done, total int) { got = append(got, [2]int{done, total}) }

	p := rangeGC(next)
	p(0, rangeGCMax)
	p(1, rangeGCMax)
	if pct := debug.SetGCPercent(100); pct != 200 {
		t.Errorf("%d commits: GOGC %d, want 200", rangeGCMax, pct)
	}
	if len(got) != 2 || got[1] != [2]int{1, rangeGCMax} {
		t.Errorf("reports passed on: %v", got)
	}

	p = rangeGC(nil) // no terminal: nothing to pass on
	p(0, rangeGCMax+1)
	if pct := debug.SetGCPercent(100); pct != 25 {
		t.Errorf("%d commits: GOGC %d, want 25", rangeGCMax+1, pct)
	}
}
