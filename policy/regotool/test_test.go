package regotool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/secret"
)

// outcomeLine is what the Test tests compare: a result without its duration.
type outcomeLine struct {
	Name    string
	Outcome string
	File    string
	Line    int
}

func outcomes(rep TestReport) []outcomeLine {
	var out []outcomeLine
	for _, r := range rep.Results {
		out = append(out, outcomeLine{r.Package + "." + r.Name, outcome(r), filepath.Base(r.File), r.Line})
	}
	return out
}

func TestTestOutcomes(t *testing.T) {
	t.Parallel()
	mixed := func(divide string) []outcomeLine {
		return []outcomeLine{
			{"data.authz_test.test_admin_allowed", "pass", "authz_test.rego", 5},
			{"data.authz_test.test_bob_reads", "pass", "authz_test.rego", 7},
			{"data.authz_test.test_bob_writes", "fail", "authz_test.rego", 9},
			{"data.authz_test.test_conflicting_labels", "error", "authz_test.rego", 14},
			{"data.authz_test.test_divide_by_zero", divide, "authz_test.rego", 16},
			{"data.authz_test.todo_test_later", "skip", "authz_test.rego", 18},
		}
	}
	tests := map[string]struct {
		dir                              string
		opts                             TestOptions
		want                             []outcomeLine
		passed, failed, errored, skipped int
		messages                         map[string]string // test name -> substring of its message
	}{
		"mixed": {
			dir: "mixed", want: mixed("fail"), passed: 2, failed: 2, errored: 1, skipped: 1,
			messages: map[string]string{
				"test_bob_writes":         "checking bob's write",
				"test_conflicting_labels": "eval_conflict_error: rule data.authz.label produced conflicting values",
			},
		},
		"strict builtin errors": {
			dir: "mixed", opts: TestOptions{StrictBuiltinErrors: true},
			want: mixed("error"), passed: 2, failed: 1, errored: 2, skipped: 1,
			messages: map[string]string{"test_divide_by_zero": "div: divide by zero"},
		},
		"bundled module missing": {
			dir: "bundled",
			want: []outcomeLine{
				{"data.bundled_test.test_admin_allowed", "fail", "bundled_test.rego", 5},
				{"data.bundled_test.test_guest_denied", "pass", "bundled_test.rego", 7},
			},
			passed: 1, failed: 1,
		},
		"bundled module given": {
			dir: "bundled",
			opts: TestOptions{Bundled: map[string]string{
				"passman/builtin.rego": "package passman.builtin\n\nallow if input.role == \"admin\"\n",
			}},
			want: []outcomeLine{
				{"data.bundled_test.test_admin_allowed", "pass", "bundled_test.rego", 5},
				{"data.bundled_test.test_guest_denied", "pass", "bundled_test.rego", 7},
			},
			passed: 2,
		},
		"timeout": {
			dir: "slow", opts: TestOptions{Timeout: 50 * time.Millisecond},
			want:     []outcomeLine{{"data.slow_test.test_slow", "error", "slow_test.rego", 3}},
			errored:  1,
			messages: map[string]string{"test_slow": "eval_cancel_error"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rep, err := Test(context.Background(), filepath.Join("testdata", "test", tc.dir), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, outcomes(rep)); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			got := [4]int{rep.Passed, rep.Failed, rep.Errored, rep.Skipped}
			if want := [4]int{tc.passed, tc.failed, tc.errored, tc.skipped}; got != want {
				t.Errorf("passed/failed/errored/skipped = %v, want %v", got, want)
			}
			for _, r := range rep.Results {
				if want, ok := tc.messages[r.Name]; ok && !strings.Contains(r.Message, want) {
					t.Errorf("%s message = %q, want it to contain %q", r.Name, r.Message, want)
				}
				if r.Pass && r.Message != "" {
					t.Errorf("%s passed with message %q", r.Name, r.Message)
				}
			}
		})
	}
}

func TestTestCoverage(t *testing.T) {
	t.Parallel()
	cov := func(dir string, bundled map[string]string) float64 {
		rep, err := Test(context.Background(), filepath.Join("testdata", "test", dir), TestOptions{Bundled: bundled})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Passed == 0 {
			t.Fatalf("%s: no test passed", dir)
		}
		return rep.Coverage
	}
	less, more := cov("coverage_less", nil), cov("coverage_more", nil)
	if less <= 0 || less >= 100 {
		t.Errorf("coverage testing one branch of three = %.2f, want strictly between 0 and 100", less)
	}
	if more != 100 {
		t.Errorf("coverage testing every branch = %.2f, want 100", more)
	}
	// Coverage counts only the lines of the directory's policy files: not
	// the tests', and not the bundled modules', though they run and are
	// fully covered here.
	builtin := map[string]string{"passman/builtin.rego": "package passman.builtin\n\nallow if input.role == \"admin\"\n"}
	if got := cov("bundled", builtin); got != 0 {
		t.Errorf("coverage with no policy file in the directory = %.2f, want 0", got)
	}
	grade, err := os.ReadFile(filepath.Join("testdata", "test", "coverage_less", "grade.rego"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cov("coverage_more", map[string]string{"extra/grade_copy.rego": strings.ReplaceAll(string(grade), "package grade", "package extra")}); got != more {
		t.Errorf("coverage with an untested bundled module = %.2f, want %.2f as without it", got, more)
	}
}

func TestTestErrors(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "notes.txt"), []byte("no policy here"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := t.TempDir()
	if err := os.WriteFile(filepath.Join(big, "big.rego"), make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		dir      string
		opts     TestOptions
		sentinel error
		contains string
	}{
		"syntax error names file and line": {
			dir:      "testdata/test/syntax",
			sentinel: secret.ErrInvalidArgument,
			contains: filepath.Join("testdata", "test", "syntax", "grade_test.rego") + ":7: rego_parse_error",
		},
		"bundled syntax error": {
			dir:      "testdata/test/bundled",
			opts:     TestOptions{Bundled: map[string]string{"bad.rego": "package bad\n\nallow if {\n"}},
			sentinel: secret.ErrInvalidArgument,
			contains: "bad.rego:4: rego_parse_error",
		},
		"bundled name clash": {
			dir:      "testdata/test/bundled",
			opts:     TestOptions{Bundled: map[string]string{filepath.Join("testdata", "test", "bundled", "bundled_test.rego"): "package x\n"}},
			sentinel: secret.ErrInvalidArgument,
			contains: "has the name of a file",
		},
		"compile error": {
			dir:      "testdata/test/bundled",
			opts:     TestOptions{Bundled: map[string]string{"unsafe.rego": "package unsafe\n\nallow if input.x == y\n"}},
			sentinel: secret.ErrInvalidArgument,
			contains: "unsafe.rego:3: rego_unsafe_var_error: var y is unsafe",
		},
		"missing directory": {dir: "testdata/test/nope", sentinel: secret.ErrNotFound, contains: "does not exist"},
		"no rego files":     {dir: empty, sentinel: secret.ErrNotFound, contains: "no .rego files"},
		"not a directory":   {dir: "testdata/test/mixed/authz.rego", sentinel: secret.ErrInvalidArgument, contains: "not a directory"},
		"file too large":    {dir: big, sentinel: secret.ErrTooLarge, contains: "big.rego is larger than"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Test(context.Background(), tc.dir, tc.opts)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("err = %v, want one wrapping %v", err, tc.sentinel)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("err = %q, want it to contain %q", err, tc.contains)
			}
		})
	}
}

func TestTestCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Test(ctx, "testdata/test/mixed", TestOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
