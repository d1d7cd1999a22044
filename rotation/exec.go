//go:build unix

package rotation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/passman-dev/passman/secret"
)

const (
	execDefaultTimeout = 30 * time.Second
	// execMaxStderr is how much of the child's stderr is kept for the
	// error message; the rest is read and dropped so the child never
	// blocks on a full pipe.
	execMaxStderr = 64 << 10
	// execWaitDelay bounds the wait for the child's pipes to close once it
	// has exited or been killed: a grandchild that left the process group
	// (setsid) and kept stderr open must not hold the rotation.
	execWaitDelay = 2 * time.Second
	execMaxArgs   = 64
)

// Exec is the connector that runs a program of the owner's for each step,
// for targets no built-in connector knows. Config:
//
//	command  absolute path of the program (required). It is executed
//	         directly, never through a shell, so nothing in the config is
//	         ever interpreted as shell syntax.
//	args     its arguments, as a JSON array of strings: ["--db", "main"].
//	         JSON rather than a space-separated list so that an argument
//	         may hold spaces or be empty, with no quoting rules to learn.
//	timeout  per step (default 30s); on expiry the program's whole
//	         process group is killed.
//
// The program runs as: command args... STEP, where STEP is "set", "test"
// or "revoke" (last, so that command may be an interpreter and args its
// script). The value (the new one for set and test, the previous one for
// revoke) is written to its standard input, and nowhere else: not in argv
// or the environment, which other users can read in /proc. Its environment
// is a fixed PATH and LANG plus PASSMAN_PATH and
// PASSMAN_VERSION; nothing of passman's, which may hold
// PASSMAN_MASTER_KEY or a connection's credentials. Exit status 0 is success; otherwise the error quotes
// up to 64 KiB of its stderr with the value replaced by [redacted]. Its
// stdout is discarded.
func Exec(cfg map[string]string, _ Resolver) (Connector, error) {
	if err := CheckKeys(cfg, []string{"command"}, []string{"args", "timeout"}); err != nil {
		return nil, err
	}
	e := &execConnector{command: cfg["command"]}
	if !filepath.IsAbs(e.command) || filepath.Clean(e.command) != e.command || strings.ContainsRune(e.command, 0) {
		return nil, fmt.Errorf("%w: config key \"command\": must be an absolute, clean path to a program (no shell, no PATH lookup)", secret.ErrInvalidArgument)
	}
	if s := cfg["args"]; s != "" {
		if err := json.Unmarshal([]byte(s), &e.args); err != nil {
			return nil, fmt.Errorf("%w: config key \"args\": must be a JSON array of strings, like [\"--db\", \"main\"]: %w", secret.ErrInvalidArgument, err)
		}
		if len(e.args) > execMaxArgs {
			return nil, fmt.Errorf("%w: config key \"args\": at most %d arguments", secret.ErrInvalidArgument, execMaxArgs)
		}
		for _, a := range e.args {
			if strings.ContainsRune(a, 0) {
				return nil, fmt.Errorf("%w: config key \"args\": an argument holds a NUL byte", secret.ErrInvalidArgument)
			}
		}
	}
	var err error
	if e.timeout, err = parseDurationKey(cfg, "timeout", execDefaultTimeout, 10*time.Millisecond, time.Hour); err != nil {
		return nil, err
	}
	return e, nil
}

type execConnector struct {
	command string
	args    []string
	timeout time.Duration
}

// Set implements Connector.
func (e *execConnector) Set(ctx context.Context, t Target) error { return e.run(ctx, "set", t) }

// Test implements Connector.
func (e *execConnector) Test(ctx context.Context, t Target) error { return e.run(ctx, "test", t) }

// Revoke implements Connector.
func (e *execConnector) Revoke(ctx context.Context, t Target) error { return e.run(ctx, "revoke", t) }

func (e *execConnector) run(ctx context.Context, step string, t Target) error {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	argv := append(append(make([]string, 0, len(e.args)+1), e.args...), step)
	cmd := exec.CommandContext(ctx, e.command, argv...)
	cmd.Env = execEnv(t)
	cmd.Stdin = bytes.NewReader(t.Value.Reveal())
	stderr := &execCapture{max: execMaxStderr}
	cmd.Stderr = stderr
	// Its own process group, so that on timeout the helpers it started
	// (a shell script's children) die with it instead of lingering with
	// the value on their stdin.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = execWaitDelay

	err := cmd.Run()
	if err == nil {
		return nil
	}
	// The program's path is the connection's configuration: not named to
	// a caller, whose rotation status this error becomes.
	what := fmt.Sprintf("exec %s %s v%d", step, t.Path, t.Version)
	msg := strings.TrimSpace(redactCaptured(stderr.buf, stderr.dropped > 0, t.Value.Reveal(), t.Current.Reveal()))
	if msg != "" {
		if stderr.dropped > 0 {
			msg += fmt.Sprintf(" […%d more bytes]", stderr.dropped)
		}
		msg = ": " + msg
	}
	var exitErr *exec.ExitError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && cmd.ProcessState != nil && !cmd.ProcessState.Success():
		// Our timeout or the caller's deadline, whichever came first.
		return fmt.Errorf("%s: timed out (timeout %s); its process group was killed%s: %w", what, e.timeout, msg, context.DeadlineExceeded)
	case ctx.Err() != nil && cmd.ProcessState != nil:
		return fmt.Errorf("%s: killed: %w%s", what, ctx.Err(), msg)
	case errors.As(err, &exitErr):
		return fmt.Errorf("%s: %s%s", what, execStatus(exitErr.ProcessState), msg)
	default:
		// Did not start (missing, not executable), or its pipes did not
		// close within execWaitDelay.
		return fmt.Errorf("%s: %w%s", what, err, msg)
	}
}

// execPath is the child's PATH: fixed, since passman's own environment is
// none of the child's business.
const execPath = "/usr/local/bin:/usr/bin:/bin"

// execEnv is the child's whole environment: nothing is inherited from
// passman, whose environment may hold the master key or a connection's
// credentials.
func execEnv(t Target) []string {
	return []string{"PATH=" + execPath, "LANG=C.UTF-8", "PASSMAN_PATH=" + t.Path, "PASSMAN_VERSION=" + strconv.Itoa(t.Version)}
}

// execFactory is the exec connector's factory under opts: it refuses a
// command the operator did not list, unless any program is allowed.
func execFactory(opts ConnectorOptions) Factory {
	return func(cfg map[string]string, r Resolver) (Connector, error) {
		c, err := Exec(cfg, r)
		if err != nil {
			return nil, err
		}
		if !opts.ExecAnyProgram && !slices.Contains(opts.ExecPrograms, cfg["command"]) {
			return nil, fmt.Errorf("%w: config key \"command\": not a program this server's operator allows for exec connections (rotation.exec_programs)", secret.ErrPermissionDenied)
		}
		return c, nil
	}
}

func execStatus(ps *os.ProcessState) string {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + ws.Signal().String()
	}
	return "exited with status " + strconv.Itoa(ps.ExitCode())
}

// execCapture keeps the first max bytes written and counts the rest.
type execCapture struct {
	max     int
	buf     []byte
	dropped int64
}

func (c *execCapture) Write(p []byte) (int, error) {
	n := min(len(p), c.max-len(c.buf))
	c.buf = append(c.buf, p[:n]...)
	c.dropped += int64(len(p) - n)
	return len(p), nil
}
