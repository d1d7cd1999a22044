//go:build unix

package rotation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/passman-dev/passman/secret"
)

// The exec tests run this test binary as the program, in helper mode: the
// child's environment is minimal by design, so the mode is chosen by
// arguments, not by an environment variable.
const execHelperMarker = "passman-exec-helper"

// TestExecConnectorHelper is the child's side; run normally it does
// nothing. Arguments: ... passman-exec-helper MODE DIR STEP.
func TestExecConnectorHelper(t *testing.T) {
	i := slices.Index(os.Args, execHelperMarker)
	if i < 0 {
		return
	}
	// syscall.Exit, not os.Exit: under -race, os.Exit waits a second for
	// late race reports, which would make each child take a second.
	syscall.Exit(execHelperMain(os.Args[i+1], os.Args[i+2], os.Args[len(os.Args)-1]))
}

func execHelperMain(mode, dir, step string) int {
	var stdin []byte
	if mode != "hang" && mode != "sleep" {
		stdin, _ = io.ReadAll(os.Stdin)
	}
	sum := sha256.Sum256(stdin)
	writeAtomic := func(name, content string) {
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o600); err == nil {
			_ = os.Rename(tmp, filepath.Join(dir, name))
		}
	}
	switch mode {
	case "record":
		f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return 10
		}
		fmt.Fprintf(f, "%s %s %s %s\n", step, hex.EncodeToString(sum[:]), os.Getenv("PASSMAN_PATH"), os.Getenv("PASSMAN_VERSION"))
		_ = f.Close()
		return 0
	case "inspect":
		writeAtomic("stdin", hex.EncodeToString(sum[:]))
		writeAtomic("pid", strconv.Itoa(os.Getpid()))
		// Stay alive until the test has looked at /proc.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(dir, "release")); err == nil {
				return 0
			}
		}
		return 11
	case "fail":
		fmt.Fprintf(os.Stderr, "cannot apply %s during %s\n", stdin, step)
		return 3
	case "flood":
		// The value straddles the end of what the connector keeps.
		os.Stderr.Write(bytes.Repeat([]byte("x"), execMaxStderr-3))
		os.Stderr.Write(stdin)
		os.Stderr.Write(bytes.Repeat([]byte("y"), 1000))
		return 1
	case "hang":
		self, _ := os.Executable()
		gc := exec.Command(self, "-test.run=^TestExecConnectorHelper$", "--", execHelperMarker, "sleep", dir, step)
		if err := gc.Start(); err != nil {
			return 12
		}
		writeAtomic("grandchild", strconv.Itoa(gc.Process.Pid))
		time.Sleep(time.Minute)
		return 0
	case "sleep":
		time.Sleep(time.Minute)
		return 0
	}
	return 13
}

func execTestConnector(t *testing.T, mode, dir string, cfg map[string]string) Connector {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args, _ := json.Marshal([]string{"-test.run=^TestExecConnectorHelper$", "--", execHelperMarker, mode, dir})
	full := map[string]string{"command": self, "args": string(args)}
	for k, v := range cfg {
		full[k] = v
	}
	c, err := Exec(full, nil)
	if err != nil {
		t.Fatalf("Exec(%v): %v", full, err)
	}
	return c
}

func execWaitFile(t *testing.T, path string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil {
			return string(b)
		}
	}
	t.Fatalf("%s did not appear", path)
	return ""
}

func execSHA(v string) string {
	s := sha256.Sum256([]byte(v))
	return hex.EncodeToString(s[:])
}

// TestExecValueOnlyOnStdin looks at the running child from outside, as
// another user on the machine could, and checks the value is not there.
// Not parallel: it sets PASSMAN_MASTER_KEY to check the child lacks it.
func TestExecValueOnlyOnStdin(t *testing.T) {
	const value = "VALUE_canary_3b8e1f62"
	const masterKey = "MASTER_canary_c07d"
	t.Setenv("PASSMAN_MASTER_KEY", masterKey)
	t.Setenv("PASSMAN_EXEC_TEST_OTHER", "other")
	t.Setenv("HOME", "/home/HOME_canary_5e2a")
	dir := t.TempDir()
	c := execTestConnector(t, "inspect", dir, nil)

	done := make(chan error, 1)
	go func() {
		done <- c.Set(context.Background(), Target{Path: "app/db", Version: 42, Value: secret.NewValue([]byte(value))})
	}()
	pid := execWaitFile(t, filepath.Join(dir, "pid"))
	if runtime.GOOS == "linux" {
		cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		environ, err := os.ReadFile("/proc/" + pid + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		env := strings.Split(strings.TrimRight(string(environ), "\x00"), "\x00")
		t.Logf("argv %q\nenv %q", argv, env)
		for _, canary := range []string{value, masterKey, "HOME_canary_5e2a"} {
			if strings.Contains(string(cmdline), canary) || strings.Contains(string(environ), canary) {
				t.Errorf("%q is in the child's argv or environment", canary)
			}
		}
		if argv[len(argv)-1] != "set" {
			t.Errorf("last argument %q, want the step", argv[len(argv)-1])
		}
		keys := map[string]string{}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			keys[k] = v
		}
		if keys["PASSMAN_PATH"] != "app/db" || keys["PASSMAN_VERSION"] != "42" || keys["PATH"] == "" {
			t.Errorf("child environment %q", env)
		}
		for k := range keys {
			if !slices.Contains([]string{"PATH", "LANG", "PASSMAN_PATH", "PASSMAN_VERSION"}, k) {
				t.Errorf("child environment has %s", k)
			}
		}
	} else {
		t.Log("no /proc here: only stdin is checked")
	}
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("set: %v", err)
	}
	if got := execWaitFile(t, filepath.Join(dir, "stdin")); got != execSHA(value) {
		t.Errorf("child's stdin hashes to %s, want the value's", got)
	}
}

func TestExecSteps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	c := execTestConnector(t, "record", dir, nil)
	if err := c.Set(ctx, Target{Path: "a/b", Version: 2, Value: secret.NewValue([]byte("new")), Current: secret.NewValue([]byte("old"))}); err != nil {
		t.Fatal(err)
	}
	if err := c.Test(ctx, Target{Path: "a/b", Version: 2, Value: secret.NewValue([]byte("new"))}); err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(ctx, Target{Path: "a/b", Version: 1, Value: secret.NewValue([]byte("old"))}); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("set %s a/b 2\ntest %s a/b 2\nrevoke %s a/b 1\n", execSHA("new"), execSHA("new"), execSHA("old"))
	if string(log) != want {
		t.Errorf("steps:\n%s\nwant:\n%s", log, want)
	}
}

func TestExecFailureScrubsStderr(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const value = "FAIL_canary_5e0a77"
	target := Target{Path: "p", Version: 1, Value: secret.NewValue([]byte(value))}

	err := execTestConnector(t, "fail", t.TempDir(), nil).Set(ctx, target)
	if err == nil || !strings.Contains(err.Error(), "exited with status 3") || !strings.Contains(err.Error(), "cannot apply [redacted] during set") {
		t.Fatalf("set: %v", err)
	}
	if strings.Contains(err.Error(), value) {
		t.Fatalf("error leaks the value: %v", err)
	}

	err = execTestConnector(t, "flood", t.TempDir(), nil).Set(ctx, target)
	if err == nil {
		t.Fatal("flood: no error")
	}
	msg := err.Error()
	if strings.Contains(msg, value[:3]) || strings.Contains(msg, "y") && strings.Contains(msg, "yyy") {
		t.Fatalf("flood: the value's start or what follows the 64 KiB cut is in the error: …%s", msg[max(0, len(msg)-120):])
	}
	if !strings.Contains(msg, "more bytes]") || len(msg) > execMaxStderr+500 {
		t.Fatalf("flood: error of %d bytes: …%s", len(msg), msg[max(0, len(msg)-120):])
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := execTestConnector(t, "hang", dir, map[string]string{"timeout": "1s"})
	start := time.Now()
	err := c.Set(context.Background(), Target{Path: "p", Version: 1, Value: secret.NewValue([]byte("v"))})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("set: %v", err)
	}
	if d := time.Since(start); d > time.Second+execWaitDelay+2*time.Second {
		t.Fatalf("returned after %s", d)
	}
	gc, err := os.ReadFile(filepath.Join(dir, "grandchild"))
	if err != nil {
		t.Fatalf("the helper never started its own child (slow machine?): %v", err)
	}
	pid, _ := strconv.Atoi(string(gc))
	for deadline := time.Now().Add(5 * time.Second); !execProcessGone(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("grandchild %d survived the timeout", pid)
		}
	}
}

// execProcessGone: no such process, or a zombie (dead, waiting for a
// parent that may never reap it in a container).
func execProcessGone(pid int) bool {
	if runtime.GOOS == "linux" {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		// "pid (comm) STATE ..."; comm may hold spaces and parentheses.
		rest := b[bytes.LastIndexByte(b, ')')+1:]
		return len(rest) > 1 && (rest[1] == 'Z' || rest[1] == 'X')
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestExecMissingProgram(t *testing.T) {
	t.Parallel()
	// A shell command line is a path like any other: there is no shell.
	for _, command := range []string{"/nonexistent/passman-hook", "/bin/sh -c true"} {
		c, err := Exec(map[string]string{"command": command}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Set(context.Background(), Target{Path: "p", Version: 1, Value: secret.NewValue([]byte("v"))}); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: set: %v", command, err)
		}
	}
}

func TestExecConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  map[string]string
		key  string
	}{
		{"minimal", map[string]string{"command": "/usr/local/bin/rotate-hook"}, ""},
		{"full", map[string]string{"command": "/usr/bin/python3", "args": `["/opt/rotate.py", "--db", "main db", ""]`, "timeout": "5m"}, ""},
		{"no command", map[string]string{"args": `[]`}, "command"},
		{"relative command", map[string]string{"command": "rotate-hook"}, "command"},
		{"unclean command", map[string]string{"command": "/usr/bin/../bin/hook"}, "command"},
		{"args not JSON", map[string]string{"command": "/bin/hook", "args": "--db main"}, "args"},
		{"args not strings", map[string]string{"command": "/bin/hook", "args": `[1, 2]`}, "args"},
		{"args object", map[string]string{"command": "/bin/hook", "args": `{"a": "b"}`}, "args"},
		{"args NUL", map[string]string{"command": "/bin/hook", "args": `["a\u0000b"]`}, "args"},
		{"bad timeout", map[string]string{"command": "/bin/hook", "timeout": "soon"}, "timeout"},
		{"zero timeout", map[string]string{"command": "/bin/hook", "timeout": "0s"}, "timeout"},
		{"unknown key", map[string]string{"command": "/bin/hook", "shell": "true"}, "shell"},
	} {
		_, err := Exec(tc.cfg, nil)
		switch {
		case tc.key == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.key != "" && (!errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), `"`+tc.key+`"`)):
			t.Errorf("%s: error %v, want invalid argument naming %q", tc.name, err, tc.key)
		}
	}
}
