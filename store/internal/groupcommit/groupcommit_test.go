package groupcommit

import (
	"sync"
	"testing"
	"time"

	"github.com/passman-dev/passman/store"
)

// callers runs n callers that each add a call, wait for its commit, and
// come back after turnaround, rounds times; it returns the groups' sizes.
func callers(t *testing.T, q *Queue, sizes *[]int, mu *sync.Mutex, n, rounds int, turnaround time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for range rounds {
				c := NewCall(func(store.Tx) error { return nil })
				if !q.Add(c) {
					t.Error("queue closed")
					return
				}
				if err := <-c.Done; err != nil {
					t.Error(err)
					return
				}
				time.Sleep(turnaround)
			}
		})
	}
	wg.Wait()
}

func newQueue(gather, commit time.Duration) (*Queue, *[]int, *sync.Mutex) {
	var mu sync.Mutex
	var sizes []int
	q := &Queue{}
	q.Init(64, func(calls []*Call) {
		mu.Lock()
		sizes = append(sizes, len(calls))
		mu.Unlock()
		time.Sleep(commit)
		Finish(calls, nil)
	})
	q.Gather(gather)
	return q, &sizes, &mu
}

func mean(xs []int) float64 {
	s := 0
	for _, x := range xs {
		s += x
	}
	return float64(s) / float64(len(xs))
}

// Callers that come back shortly after their commit end up in one group
// with Gather; without it they split into two that take turns.
func TestGatherJoinsCallersInOneGroup(t *testing.T) {
	const n, rounds = 8, 30
	for _, tc := range []struct {
		gather     time.Duration
		atLeast    float64
		atMostHalf bool
	}{
		{gather: 50 * time.Millisecond, atLeast: 0.75 * n},
		{gather: 0, atMostHalf: true},
	} {
		q, sizes, mu := newQueue(tc.gather, 5*time.Millisecond)
		callers(t, q, sizes, mu, n, rounds, time.Millisecond)
		q.Close()
		m := mean(*sizes)
		t.Logf("gather %v: %d groups, mean size %.1f", tc.gather, len(*sizes), m)
		if tc.atLeast > 0 && m < tc.atLeast {
			t.Errorf("gather %v: mean group %.1f of %d callers, want at least %.1f", tc.gather, m, n, tc.atLeast)
		}
		if tc.atMostHalf && m > 0.75*n {
			t.Errorf("without gather: mean group %.1f of %d callers; the split this test measures Gather against did not happen", m, n)
		}
	}
}

// A lone caller is never held back, and callers that leave cost the
// next group one wait at most.
func TestGatherDoesNotWaitForNobody(t *testing.T) {
	q, sizes, mu := newQueue(time.Second, 0)
	start := time.Now()
	callers(t, q, sizes, mu, 1, 20, 0)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("20 commits of one caller took %v: it waited for callers that do not exist", d)
	}
	q.Close()

	q, sizes, mu = newQueue(100*time.Millisecond, time.Millisecond)
	callers(t, q, sizes, mu, 4, 5, 0)
	start = time.Now()
	callers(t, q, sizes, mu, 1, 10, 0)
	if d := time.Since(start); d > 350*time.Millisecond {
		t.Fatalf("10 commits of the one caller left took %v: more than one gather wait", d)
	}
	q.Close()
}

// A caller that comes back as soon as it is answered, before the
// committer looks at the queue again, is not counted twice: a lone caller
// never waits for a second one.
func TestGatherCountsReturningCallerOnce(t *testing.T) {
	const rounds, gather = 200, 20 * time.Millisecond
	q := &Queue{}
	q.Init(64, func(calls []*Call) { time.Sleep(100 * time.Microsecond); Finish(calls, nil) })
	q.Gather(gather)
	slow := 0
	for range rounds {
		start := time.Now()
		c := NewCall(func(store.Tx) error { return nil })
		if !q.Add(c) {
			t.Fatal("queue closed")
		}
		<-c.Done
		if time.Since(start) > gather/2 {
			slow++
		}
	}
	q.Close()
	if slow > 0 {
		t.Errorf("%d of %d calls of a lone caller waited for nobody", slow, rounds)
	}
}
