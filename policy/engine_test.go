package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/passman-dev/passman/secret"
)

func TestNewStrictMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want string // after the file name
	}{
		{"unused local var", "package passman.authz\n\nallow if {\n\tx := 1\n\tinput.action == \"read\"\n}\n", ":4:2: rego_compile_error: assigned var x unused"},
		{"duplicate import", "package passman.authz\n\nimport data.passman.config\nimport data.passman.config\n\nallow if config.open\n", ":4:1: rego_compile_error: import must not shadow import data.passman.config"},
		{"unused import", "package passman.authz\n\nimport data.passman.config\n\nallow if true\n", ":3:1: rego_compile_error: import data.passman.config unused"},
		{"rego v0 syntax", "package passman.authz\n\nallow { true }\n", ":3:1: rego_parse_error: `if` keyword is required before rule body"},
		{"network builtin", "package passman.authz\n\nallow if http.send({\"method\": \"get\", \"url\": \"http://x\"}).status_code == 200\n", ":3:10: rego_type_error: undefined function http.send (passman policies may not use network or runtime built-ins)"},
		{"deny not a set", "package passman.authz\n\ndeny if true\n", "prepare authz query (allow must be a boolean, deny and reasons sets of strings): invalid policy: query:2:24: rego_type_error"},
		{"second default", "package passman.authz\n\ndefault allow := true\n", "rego_type_error: multiple default rules data.passman.authz.allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"p.rego": tt.text})
			_, err := New(context.Background(), Options{Dir: dir})
			if !errors.Is(err, ErrInvalidPolicy) || !errors.Is(err, secret.ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrInvalidPolicy wrapping ErrInvalidArgument", err)
			}
			want := tt.want
			if strings.HasPrefix(want, ":") {
				want = filepath.Join(dir, "p.rego") + want
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v\nwant it to contain %q", err, want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"missing dir", Options{Dir: filepath.Join(t.TempDir(), "nope")}, "policy directory"},
		{"config type", Options{Config: map[string]any{"min_generated_length": "long"}}, "policy config"},
		{"config duration", Options{Config: map[string]any{"max_rotation_period": "quarterly"}}, `max_rotation_period "quarterly"`},
		{"config null", Options{Config: map[string]any{"required_tags": nil}}, "required_tags must not be null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(context.Background(), tt.opts)
			if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrInvalidArgument containing %q", err, tt.want)
			}
		})
	}
}

func TestRevision(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.rego": "package passman.authz\n\nallow if input.action == \"list\"\n"})
	base := newEngine(t, Options{Dir: dir})
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(base.Revision()) {
		t.Fatalf("revision %q, want sha256:<64 hex>", base.Revision())
	}
	// The same policy elsewhere on disk is the same revision.
	other := t.TempDir()
	writeFiles(t, other, map[string]string{"a.rego": "package passman.authz\n\nallow if input.action == \"list\"\n"})
	if got := newEngine(t, Options{Dir: other}).Revision(); got != base.Revision() {
		t.Errorf("same files in another directory: revision %s, want %s", got, base.Revision())
	}
	// Unit tests and hidden directories are not part of the set.
	writeFiles(t, other, map[string]string{"a_test.rego": "package x\n", ".git/x.rego": "not rego"})
	if got := newEngine(t, Options{Dir: other}).Revision(); got != base.Revision() {
		t.Errorf("with a test file: revision %s, want %s", got, base.Revision())
	}
	distinct := map[string]string{
		"bundled only":   newEngine(t, Options{}).Revision(),
		"config":         newEngine(t, Options{Dir: dir, Config: map[string]any{"min_generated_length": 20}}).Revision(),
		"equal config":   newEngine(t, Options{Dir: dir, Config: map[string]any{"min_generated_length": 16}}).Revision(),
		"days are hours": newEngine(t, Options{Dir: dir, Config: map[string]any{"max_rotation_period": "90d"}}).Revision(),
		"renamed file": func() string {
			d := t.TempDir()
			writeFiles(t, d, map[string]string{"b.rego": "package passman.authz\n\nallow if input.action == \"list\"\n"})
			return newEngine(t, Options{Dir: d}).Revision()
		}(),
	}
	for name, rev := range distinct {
		same := name == "equal config" || name == "days are hours" // both equal the defaults
		if (rev == base.Revision()) != same {
			t.Errorf("%s: revision %s, base %s, want equal=%v", name, rev, base.Revision(), same)
		}
	}
}

// reloadInput asks whether bob may write prod/x.
var reloadInput = AuthzInput{Subject: Subject{ID: "bob", Kind: KindUser}, Action: ActionWrite, Path: "prod/x", Store: StoreInfo{CreatedBy: "alice"}, Time: testTime}

func TestReload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "team", "bob.rego")
	writeFiles(t, dir, map[string]string{"team/bob.rego": "package passman.authz\n\nallow if input.action == \"read\"\n"})
	e := newEngine(t, Options{Dir: dir})
	rev := e.Revision()
	check := func(wantAllow bool, wantRev string) {
		t.Helper()
		d, err := e.Authorize(ctx, reloadInput)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allow != wantAllow || d.Revision != wantRev || e.Revision() != wantRev {
			t.Errorf("decision %+v (engine revision %s), want allow=%v revision %s", d, e.Revision(), wantAllow, wantRev)
		}
	}
	check(false, rev)

	broken := []struct {
		name, text, where string
	}{
		{"syntax error", "package passman.authz\n\nallow if {\n\tinput.action ==\n}\n", ":5:1: rego_parse_error"},
		{"unsafe variable", "package passman.authz\n\nallow if {\n\tinput.action == x\n}\n", ":4:2: rego_unsafe_var_error: var x is unsafe"},
		{"unused variable", "package passman.authz\n\nallow if {\n\tx := input.action\n\ttrue\n}\n", ":4:2: rego_compile_error: assigned var x unused"},
	}
	for _, b := range broken {
		writeFiles(t, dir, map[string]string{"team/bob.rego": b.text})
		err := e.Reload(ctx)
		if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), file+b.where) {
			t.Errorf("%s: Reload err = %v, want ErrInvalidPolicy containing %q", b.name, err, file+b.where)
		}
		check(false, rev) // the old set still decides
	}

	writeFiles(t, dir, map[string]string{"team/bob.rego": "package passman.authz\n\nallow if input.action in {\"read\", \"write\"}\n"})
	if err := e.Reload(ctx); err != nil {
		t.Fatalf("Reload of fixed policy: %v", err)
	}
	if e.Revision() == rev {
		t.Fatal("revision unchanged after a successful reload of changed files")
	}
	check(true, e.Revision())

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	check(false, newEngine(t, Options{}).Revision())
}

// TestReloadConcurrent runs decisions while Reload flips between two valid
// sets and one broken one: every decision must match the revision it
// reports, so no decision ever saw half a set. Run it with -race.
func TestReloadConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	closed := "package passman.authz\n\nallow if input.action == \"read\"\n"
	open := "package passman.authz\n\nallow if input.action in {\"read\", \"write\"}\n"
	broken := "package passman.authz\n\nallow if input.action == y\n"

	writeFiles(t, dir, map[string]string{"p.rego": open})
	openRev := newEngine(t, Options{Dir: dir}).Revision()
	writeFiles(t, dir, map[string]string{"p.rego": closed})
	e := newEngine(t, Options{Dir: dir})
	closedRev := e.Revision()

	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 16)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, err := e.Authorize(ctx, reloadInput)
				switch {
				case err != nil:
					errs <- err
					return
				case d.Revision == openRev && !d.Allow, d.Revision == closedRev && d.Allow:
					errs <- errors.New("decision does not match its revision")
					return
				case d.Revision != openRev && d.Revision != closedRev:
					errs <- errors.New("unknown revision " + d.Revision)
					return
				}
			}
		})
	}
	for i := range 30 {
		text := []string{open, broken, closed}[i%3]
		writeFiles(t, dir, map[string]string{"p.rego": text})
		if err := e.Reload(ctx); (err != nil) != (text == broken) {
			t.Errorf("reload %d: err = %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestDecisionCache checks when decisions are memoised: only for policy
// sets that cannot depend on the time, and never across a reload.
func TestDecisionCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, tc := range map[string]struct {
		rule      string
		cacheable bool
	}{
		"pure":            {`allow if input.subject.id == "bob"`, true},
		"reads time":      {`allow if time.parse_rfc3339_ns(input.time) > 0`, false},
		"whole input":     {`allow if count(object.keys(input)) > 0`, false},
		"dynamic key":     {"allow if {\n\tsome k\n\tinput[k] == \"x\"\n}", false},
		"clock built-in":  {`allow if time.now_ns() > 0`, false},
		"random built-in": {`allow if rand.intn("x", 10) >= 0`, false},
		"certificate":     {`allow if crypto.x509.parse_and_verify_certificates(input.subject.claims.chain)[0]`, false},
		"jwt verify":      {`allow if io.jwt.decode_verify(input.subject.claims.jwt, {"secret": "k"})[0]`, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"p.rego": "package passman.authz\n\n" + tc.rule + "\n"})
			e := newEngine(t, Options{Dir: dir})
			if got := e.set.Load().cache != nil; got != tc.cacheable {
				t.Fatalf("cacheable = %v, want %v", got, tc.cacheable)
			}
		})
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"p.rego": "package passman.authz\n\nallow if input.subject.id == \"bob\"\n"})
	e := newEngine(t, Options{Dir: dir})
	bob := AuthzInput{Subject: Subject{ID: "bob", Kind: KindUser}, Action: ActionRead, Path: "a/b", Time: testTime}
	carol := bob
	carol.Subject.ID = "carol"
	for range 3 { // hits must give the same answers as misses
		if d, _ := e.Authorize(ctx, bob); !d.Allow {
			t.Fatal("bob denied")
		}
		if d, _ := e.Authorize(ctx, carol); d.Allow {
			t.Fatal("carol allowed: a cached decision leaked across inputs")
		}
	}
	d, _ := e.Authorize(ctx, bob)
	d.Reasons = append(d.Reasons, "changed by the caller")
	if again, _ := e.Authorize(ctx, bob); len(again.Reasons) == len(d.Reasons) {
		t.Fatal("a caller's change reached the cache")
	}
	writeFiles(t, dir, map[string]string{"p.rego": "package passman.authz\n\nallow if input.subject.id == \"carol\"\n"})
	if err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Authorize(ctx, bob); d.Allow {
		t.Fatal("a decision cached before the reload survived it")
	}
}
