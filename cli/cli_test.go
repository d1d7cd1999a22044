package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/passman-dev/passman/internal/regalserve"
)

var update = flag.Bool("update", false, "update golden sections of testdata/script/*.txtar from actual output")

// TestMain lets testscript run the test binary as the passman command: the
// scripts exercise the real Main, flags, streams and exit codes.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"passman":       func() { os.Exit(Main(context.Background(), os.Args[1:], OSEnv())) },
		"passman-regal": func() { os.Exit(regalserve.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the user stories in testdata/script against a local
// store; TestScriptsRemote runs them again against a server.
func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, scriptParams(false, nil))
}

// scriptParams are the parameters of both runs of the scripts. remote is
// the [remote] condition, with which a script guards what only holds for
// a local store; setup, if not nil, prepares the backend.
func scriptParams(remote bool, setup func(*testscript.Env) error) testscript.Params {
	return testscript.Params{
		Dir: "testdata/script",
		// Golden sections are the local run's; the remote run checks the
		// same ones but must not rewrite them concurrently.
		UpdateScripts:       *update && !remote,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(e *testscript.Env) error {
			// Fsync is passman's default; the scripts test behaviour, not
			// durability, and run faster without it.
			e.Setenv(envAuditSync, "write")
			// In the remote run nothing creates this store (init refuses
			// while a server address is set), so a command that used the
			// local store instead of the server fails.
			e.Setenv(envStore, e.WorkDir+"/store")
			if setup != nil {
				return setup(e)
			}
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond == "remote" {
				return remote, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":     cmdExits,
			"genfile":   cmdGenfile,
			"mode":      cmdMode,
			"tamper":    cmdTamper,
			"jsonshape": cmdJSONShape,
			"plant":     cmdPlant,
		},
	}
}

// cmdExits runs a command and checks its exit code: exits CODE PROG ARGS...
// Its stdout and stderr are then available to stdout/stderr like exec's.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("run %s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// cmdGenfile writes a file of SIZE copies of a byte ('x', or the byte
// given in hex): genfile NAME SIZE [HEXBYTE].
func cmdGenfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: genfile NAME SIZE [HEXBYTE]")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	fill := byte('x')
	if len(args) == 3 {
		b, err := strconv.ParseUint(args[2], 16, 8)
		ts.Check(err)
		fill = byte(b)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), bytes.Repeat([]byte{fill}, n), 0o600))
}

// cmdMode checks a file's permission bits: mode FILE 0600.
func cmdMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: mode FILE PERM")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := fi.Mode().Perm(); (uint64(got) == want) == neg {
		ts.Fatalf("%s has mode %04o, want %s%04o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// cmdTamper edits a file the way an attacker would:
//
//	tamper FILE edit LINE OLD NEW   replace OLD by NEW in line LINE (1-based)
//	tamper FILE droplast            remove the last line
//	tamper FILE cut N               cut N bytes off the end (a torn line)
func cmdTamper(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: tamper FILE edit LINE OLD NEW | droplast | cut N")
	}
	name := ts.MkAbs(args[0])
	b, err := os.ReadFile(name)
	ts.Check(err)
	switch op := args[1]; {
	case op == "edit" && len(args) == 5:
		lines := strings.SplitAfter(string(b), "\n")
		n, err := strconv.Atoi(args[2])
		ts.Check(err)
		if n < 1 || n > len(lines) || !strings.Contains(lines[n-1], args[3]) {
			ts.Fatalf("line %d of %s does not contain %q", n, args[0], args[3])
		}
		lines[n-1] = strings.Replace(lines[n-1], args[3], args[4], 1)
		b = []byte(strings.Join(lines, ""))
	case op == "droplast" && len(args) == 2:
		body := bytes.TrimSuffix(b, []byte("\n"))
		b = b[:bytes.LastIndexByte(body, '\n')+1]
	case op == "cut" && len(args) == 3:
		n, err := strconv.Atoi(args[2])
		ts.Check(err)
		b = b[:len(b)-n]
	default:
		ts.Fatalf("usage: tamper FILE edit LINE OLD NEW | droplast | cut N")
	}
	ts.Check(os.WriteFile(name, b, 0o600))
}

// cmdJSONShape prints the shape of a JSON document, one "path type" line
// per field in key order, so a script can compare output shapes with a
// golden file while times, ids and hashes vary: jsonshape FILE.
func cmdJSONShape(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: jsonshape FILE")
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile(args[0])))
	dec.UseNumber()
	ts.Check(dec.Decode(&v))
	var lines []string
	shape(&lines, ".", v)
	fmt.Fprintln(ts.Stdout(), strings.Join(lines, "\n"))
}

func shape(lines *[]string, path string, v any) {
	switch v := v.(type) {
	case map[string]any:
		*lines = append(*lines, path+" object")
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			shape(lines, strings.TrimSuffix(path, ".")+"."+k, v[k])
		}
	case []any:
		*lines = append(*lines, path+" array")
		// Elements share one shape; show the first's.
		if len(v) > 0 {
			shape(lines, path+"[]", v[0])
		}
	case string:
		*lines = append(*lines, path+" string")
	case json.Number:
		*lines = append(*lines, path+" number")
	case bool:
		*lines = append(*lines, path+" bool")
	case nil:
		*lines = append(*lines, path+" null")
	}
}

// cmdPlant appends a line holding a secret that gitleaks' rules detect to a
// file and sets $PLANTED to the secret, so scripts can check it is never
// shown: plant FILE aws|github. The secret is made here, at run time, so
// this repository's own files hold none.
func cmdPlant(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: plant FILE aws|github")
	}
	rng := rand.New(rand.NewPCG(uint64(len(args[0])), 7))
	pick := func(n int, alphabet string) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	var secretValue, line string
	switch args[1] {
	case "aws":
		secretValue = "AKIA" + pick(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
		line = fmt.Sprintf("aws_access_key_id = %q\n", secretValue)
	case "github":
		secretValue = "ghp_" + pick(36, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
		line = fmt.Sprintf("GITHUB_TOKEN=%s\n", secretValue)
	default:
		ts.Fatalf("plant: unknown kind %q", args[1])
	}
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	ts.Check(err)
	_, err = f.WriteString(line)
	ts.Check(err)
	ts.Check(f.Close())
	ts.Setenv("PLANTED", secretValue)
	if p, ok := ts.Value(plantedKey{}).(*[]string); ok {
		*p = append(*p, secretValue)
	}
}

// plantedKey is the testscript.Env.Values key under which a run that
// checks where planted secrets end up keeps a *[]string of them.
type plantedKey struct{}
