// Package synctrace checks, at the system call level, that a process makes
// its writes durable before it acknowledges them: the test of passman's
// fsync promise (docs/design.md, Durability).
//
// A crash test cannot make that check: a killed process's writes stay in the
// page cache, so a kill cannot tell a synced write from an unsynced one. A
// simulated power cut in Go could, for a file passman writes itself, but
// bbolt opens and writes its own *os.File. So a test re-executes its own
// binary as a child under strace(1), the child reports each acknowledged
// operation on stdout (Ack), and Check verifies from the trace that every
// write to a watched file completed before an fsync or fdatasync of that
// file that itself completed before the acknowledgement. Removing a sync
// from the acknowledgement path, or moving it after the acknowledgement,
// fails the check; so does a check that saw no writes, so the test cannot
// pass vacuously.
//
// Without strace tests skip, or fail when PASSMAN_REQUIRE_STRACE=1 (as under
// make test, whose deps step installs it).
package synctrace

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// RequireEnv, set to 1, makes tests fail instead of skipping when strace is
// missing or cannot trace.
const RequireEnv = "PASSMAN_REQUIRE_STRACE"

// childEnv hands the child its directory.
const childEnv = "PASSMAN_SYNCTRACE_DIR"

// The markers a child prints; each in one write(2).
const (
	startMarker = "synctrace:start"
	ackMarker   = "synctrace:ack"
)

// traced are the system calls that change a file's contents or make them
// durable. Others (reads, mmap with PROT_READ) cannot dirty a file.
var traced = []string{
	"write", "pwrite64", "writev", "pwritev", "pwritev2", "ftruncate", "fallocate", "copy_file_range",
	"fsync", "fdatasync",
}

// ChildDir returns the directory a traced child works in, or "" in a normal
// test run, where the child test should skip.
func ChildDir() string {
	return os.Getenv(childEnv)
}

// Start marks the end of the child's set-up: Check looks at the
// acknowledgements after it.
func Start() {
	mark(startMarker)
}

// Ack marks operation n as acknowledged: everything written to a watched file
// before it must be durable.
func Ack(n int) {
	mark(fmt.Sprintf("%s %d", ackMarker, n))
}

func mark(s string) {
	// One write call, so strace shows the marker whole.
	if _, err := os.Stdout.Write([]byte(s + "\n")); err != nil {
		fmt.Fprintf(os.Stderr, "synctrace: %v\n", err)
		os.Exit(2)
	}
}

// Run runs the test named test of the current test binary under strace, with
// ChildDir returning dir and env (NAME=VALUE) added to its environment, and
// returns its trace. The child must pass.
func Run(t testing.TB, test, dir string, env ...string) *Trace {
	t.Helper()
	strace, err := exec.LookPath("strace")
	if err != nil {
		unavailable(t, fmt.Errorf("strace not found: %w", err))
		return nil
	}
	out := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command(strace, "-f", "-qq", "-y", "-s", "64", "-e", "signal=none",
		"-e", "trace="+strings.Join(traced, ","), "-o", out,
		"--", os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), childEnv+"="+dir), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	f, err := os.Open(out)
	if err != nil {
		unavailable(t, fmt.Errorf("strace wrote no trace (%v): %w; stderr: %s", runErr, err, stderr.String()))
		return nil
	}
	defer f.Close()
	tr, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if runErr != nil {
		if !tr.started() {
			unavailable(t, fmt.Errorf("child did not start under strace: %v; stderr: %s", runErr, stderr.String()))
			return nil
		}
		t.Fatalf("traced child %s: %v\nstdout:\n%s\nstderr:\n%s", test, runErr, stdout.String(), stderr.String())
	}
	return tr
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%v (%s=1; install strace, e.g. Debian's strace package)", err, RequireEnv)
	}
	t.Skipf("%v; install strace to run this test", err)
}

// kind is what an event does.
type kind int

const (
	kindWrite kind = iota
	kindSync
	kindStart
	kindAck
)

// event is one system call, or marker, in trace order: start and end are the
// line numbers where the call began and returned (equal unless another
// thread's call came between). A call that never returned ends at +Inf.
type event struct {
	kind       kind
	path       string
	ack        string
	start, end float64
	ok         bool
}

// Trace is a parsed strace log.
type Trace struct {
	events []event
}

func (tr *Trace) started() bool {
	for _, e := range tr.events {
		if e.kind == kindStart {
			return true
		}
	}
	return false
}

var (
	// "PID NAME(FD<PATH>, ...) = RET" or "... <unfinished ...>".
	callLine = regexp.MustCompile(`^(\d+)\s+([a-z0-9_]+)\((.*)$`)
	// "PID <... NAME resumed>...) = RET".
	resumedLine = regexp.MustCompile(`^(\d+)\s+<\.\.\. ([a-z0-9_]+) resumed>(.*)$`)
	ackLabel    = regexp.MustCompile(ackMarker + ` (\d+)`)
	firstArg    = regexp.MustCompile(`^\d+<([^>]*)>`)
	result      = regexp.MustCompile(`\)\s+= (-?\d+|\?)`)
)

// maxLine bounds one line of a trace; strace truncates strings to -s 64.
const maxLine = 1 << 16

// Parse reads a trace written by strace -f -y. Lines it does not know (exit
// notices, calls on descriptors without a path) are skipped; a call resumed
// without a start is an error, as it means the trace is not what Run asked
// for.
func Parse(r io.Reader) (*Trace, error) {
	tr := &Trace{}
	type pending struct {
		name string
		idx  int // into tr.events
	}
	open := map[string]pending{} // by pid
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	for n := 0; sc.Scan(); n++ {
		line := sc.Text()
		at := float64(n)
		if m := resumedLine.FindStringSubmatch(line); m != nil {
			p, ok := open[m[1]]
			if !ok || p.name != m[2] {
				return nil, fmt.Errorf("trace line %d: %s resumed but not started", n+1, m[2])
			}
			delete(open, m[1])
			e := &tr.events[p.idx]
			e.end = at
			e.ok = succeeded(m[3])
			continue
		}
		m := callLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		pid, name, rest := m[1], m[2], m[3]
		e := event{start: at, end: at}
		switch {
		case name == "fsync" || name == "fdatasync":
			e.kind = kindSync
		case strings.Contains(rest, startMarker):
			e.kind = kindStart
		case strings.Contains(rest, ackMarker):
			e.kind = kindAck
			if a := ackLabel.FindStringSubmatch(rest); a != nil {
				e.ack = a[1]
			}
		default:
			e.kind = kindWrite
		}
		if a := firstArg.FindStringSubmatch(rest); a != nil {
			e.path = a[1]
		}
		if strings.HasSuffix(rest, "<unfinished ...>") {
			e.end = math.Inf(1)
			open[pid] = pending{name: name, idx: len(tr.events)}
		} else {
			e.ok = succeeded(rest)
		}
		tr.events = append(tr.events, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read trace: %w", err)
	}
	return tr, nil
}

// succeeded reports whether a call's result is not an error.
func succeeded(s string) bool {
	m := result.FindStringSubmatch(s)
	return m != nil && m[1] != "?" && !strings.HasPrefix(m[1], "-")
}

// Check verifies that at every acknowledgement after the child's Start, each
// of files (paths as the child opened them) is clean: every write to it that
// began before the acknowledgement returned before an fsync or fdatasync of
// it began, and that sync returned, successfully, before the
// acknowledgement. It also requires at least one acknowledgement and, before
// each, at least one write to each file since the previous one, so that a
// trace that missed the writes cannot pass.
func (tr *Trace) Check(files ...string) error {
	acks, err := tr.acks()
	if err != nil {
		return err
	}
	var errs []error
	prev := acks[0].start // the Start marker
	for _, a := range acks[1:] {
		for _, f := range files {
			if tr.writesBetween(f, prev, a.start) == 0 {
				errs = append(errs, fmt.Errorf("ack %s: no write to %s since the previous one", a.ack, f))
			}
			if err := tr.cleanAt(f, a.start); err != nil {
				errs = append(errs, fmt.Errorf("ack %s: %w", a.ack, err))
			}
		}
		prev = a.start
	}
	return errors.Join(errs...)
}

// CheckOrder verifies that first is clean (as in Check) whenever a write to
// then begins after the child's Start: what then records is never on disk
// before what first records.
func (tr *Trace) CheckOrder(first, then string) error {
	acks, err := tr.acks()
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range tr.events {
		if e.kind == kindWrite && e.path == then && e.start > acks[0].start {
			if err := tr.cleanAt(first, e.start); err != nil {
				errs = append(errs, fmt.Errorf("write to %s at trace line %d: %w", then, int(e.start)+1, err))
			}
		}
	}
	return errors.Join(errs...)
}

// acks returns the Start marker followed by the acknowledgements after it.
func (tr *Trace) acks() ([]event, error) {
	var out []event
	for _, e := range tr.events {
		switch {
		case e.kind == kindStart && out == nil:
			out = append(out, e)
		case e.kind == kindAck && out != nil:
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("trace has no start marker")
	}
	if len(out) == 1 {
		return nil, errors.New("trace has no acknowledgement after the start marker")
	}
	return out, nil
}

func (tr *Trace) writesBetween(path string, from, to float64) int {
	n := 0
	for _, e := range tr.events {
		if e.kind == kindWrite && e.path == path && e.start > from && e.start < to {
			n++
		}
	}
	return n
}

// cleanAt reports an error if a write to path that began before at is not
// covered by a sync that returned before at.
func (tr *Trace) cleanAt(path string, at float64) error {
	covered := math.Inf(-1) // writes returning before this are durable
	lastWrite, lastEnd := -1.0, math.Inf(-1)
	for _, e := range tr.events {
		if e.path != path || e.start >= at {
			continue
		}
		switch e.kind {
		case kindSync:
			if e.ok && e.end < at && e.start > covered {
				covered = e.start
			}
		case kindWrite:
			if e.end > lastEnd {
				lastWrite, lastEnd = e.start, e.end
			}
		}
	}
	if lastWrite >= 0 && lastEnd >= covered {
		return fmt.Errorf("%s not synced: the write at trace line %d is not covered by a completed fsync", path, int(lastWrite)+1)
	}
	return nil
}

// String summarises the trace for failure messages.
func (tr *Trace) String() string {
	counts := map[string]int{}
	for _, e := range tr.events {
		var k string
		switch e.kind {
		case kindWrite:
			k = "write " + e.path
		case kindSync:
			k = "sync " + e.path
		case kindAck:
			k = "ack"
		default:
			continue
		}
		counts[k]++
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		b.WriteString(k + ": " + strconv.Itoa(counts[k]) + "\n")
	}
	return b.String()
}
