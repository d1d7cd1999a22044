// Package crashtest runs the child processes of crash tests: a test binary
// re-executed to run one test that does real work until it is killed with
// SIGKILL, reporting its progress as lines on stdout.
package crashtest

import (
	"bufio"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SeedEnv sets the seed of every crash test's random schedule, to replay a
// failure: each test logs the seed it used.
const SeedEnv = "PASSMAN_CRASH_SEED"

// Rand is the crash test's source of randomness: seeded from SeedEnv when
// set, else from the clock; the seed is logged either way.
func Rand(t testing.TB) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(SeedEnv); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: not an unsigned integer", SeedEnv, s)
		}
		seed = n
	}
	t.Logf("crash schedule seed %d (replay with %s=%d)", seed, SeedEnv, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Child is a running child process.
type Child struct {
	cmd *exec.Cmd
	// Lines are the child's stdout lines; closed when its stdout closes.
	Lines <-chan string
}

// Start re-executes the test binary to run only the test named test, with
// env added to the environment. The child is killed when t ends, should the
// test not have done it.
func Start(t testing.TB, test string, env ...string) *Child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	c := &Child{cmd: cmd, Lines: lines}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return c
}

// Await waits for a line starting with prefix and returns the rest of it,
// passing earlier lines to other (nil drops them). It fails the test when
// the child exits or timeout passes first.
func (c *Child) Await(t testing.TB, prefix string, timeout time.Duration, other func(string)) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-c.Lines:
			if !ok {
				_ = c.cmd.Wait()
				t.Fatalf("child exited (%v) while the test awaited %q", c.cmd.ProcessState, prefix)
			}
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return rest
			}
			if other != nil {
				other(line)
			}
		case <-deadline:
			t.Fatalf("child said no %q within %v", prefix, timeout)
		}
	}
}

// Kill kills the child with SIGKILL and returns the lines it wrote that
// were not yet read.
func (c *Child) Kill(t testing.TB) []string {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	var rest []string
	for line := range c.Lines {
		rest = append(rest, line)
	}
	_ = c.cmd.Wait()
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL but ended with %v (its output: %q)", c.cmd.ProcessState, rest)
	}
	return rest
}
