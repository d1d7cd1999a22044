package manifest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/generator"
	"github.com/passman-dev/passman/manifest"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// snapshot is everything about a store that apply could change.
func snapshot(t *testing.T, svc passman.Service) []secret.ListEntry {
	t.Helper()
	page, err := svc.List(t.Context(), secret.ListOptions{Limit: secret.MaxListLimit, WithMetadata: true})
	if err != nil || page.Next != "" {
		t.Fatalf("list: %v (next %q)", err, page.Next)
	}
	return page.Entries
}

// TestApplyNeverRevealsValues looks for the generated values everywhere
// apply's results go: its result, the plans, errors and the audit log.
func TestApplyNeverRevealsValues(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	opts := core.Options{Dir: dir, Actor: "test", NoSync: true}
	if _, err := core.Init(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	svc, err := core.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	m, err := manifest.Parse("m.yaml", []byte("secrets:\n  - path: a/one\n    generate: {length: 64}\n  - path: a/two\n    generate: {length: 64, classes: [lower]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	before, err := manifest.MakePlan(t.Context(), svc, m)
	if err != nil {
		t.Fatal(err)
	}
	res, err := manifest.Apply(t.Context(), svc, m)
	if err != nil {
		t.Fatal(err)
	}
	after, err := manifest.MakePlan(t.Context(), svc, m)
	if err != nil {
		t.Fatal(err)
	}
	var outs bytes.Buffer
	for _, p := range []*manifest.Plan{before, after} {
		for _, f := range manifest.PlanFormats() {
			if err := manifest.WritePlan(&outs, f, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	js, _ := json.Marshal(res)
	fmt.Fprintf(&outs, "%s %+v %#v", js, res, res)
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	auditLog, err := os.ReadFile(filepath.Join(dir, core.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	svc, err = core.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"a/one", "a/two"} {
		v, err := svc.Get(t.Context(), path, secret.Selector{})
		if err != nil {
			t.Fatal(err)
		}
		val := string(v.Value.Reveal())
		if len(val) != 64 {
			t.Fatalf("%s: generated %d bytes, want 64", path, len(val))
		}
		if strings.Contains(outs.String(), val) || bytes.Contains(auditLog, []byte(val)) {
			t.Fatalf("the value of %s leaked", path)
		}
	}
	if diff := cmp.Diff([]string{"a/one", "a/two"}, res.Created); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
}

// TestApplyBadInputWritesNothing gives apply manifests that are wrong
// only after a valid first secret: nothing may be written.
func TestApplyBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	svc := newStore(t)
	seedScenario(t, svc)
	want := snapshot(t, svc)
	valid := manifest.Secret{Path: "aaa/first", Owner: "changed", Generate: &generator.Spec{Length: 32}, Line: 2, Column: 5}
	for name, tc := range map[string]struct {
		bad  manifest.Secret
		want string
	}{
		"value present":  {manifest.Secret{Path: "zzz/last", HasValue: true, Line: 9, Column: 5}, "m.yaml:9:5: secret zzz/last has a value: field"},
		"bad spec":       {manifest.Secret{Path: "zzz/last", Generate: &generator.Spec{Classes: []generator.Class{"emoji"}}, Line: 9, Column: 5}, `m.yaml:9:5: generate: unknown character class "emoji"`},
		"bad path":       {manifest.Secret{Path: "zzz//last", Static: true, Line: 9, Column: 5}, "m.yaml:9:5: invalid path: segment 2 is empty"},
		"duplicate":      {valid, "m.yaml:2:5: duplicate secret path aaa/first (first declared at line 2)"},
		"owner too long": {manifest.Secret{Path: "prod/db/password", Owner: strings.Repeat("x", 300), Static: true, Line: 9, Column: 5}, "m.yaml:9:5: owner: 300 bytes, at most 256 allowed"},
	} {
		t.Run(name, func(t *testing.T) {
			m := &manifest.Manifest{File: "m.yaml", Secrets: []manifest.Secret{valid, tc.bad}}
			res, err := manifest.Apply(t.Context(), svc, m)
			if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply error = %v, want %q", err, tc.want)
			}
			if len(res.Created)+len(res.Updated) != 0 {
				t.Errorf("Apply reports writes: %+v", res)
			}
			if diff := cmp.Diff(want, snapshot(t, svc)); diff != "" {
				t.Errorf("store changed (-before +after):\n%s", diff)
			}
		})
	}
}

// failingService fails Put and UpdateMetadata for one path.
type failingService struct {
	passman.Service
	path string
}

var errDisk = errors.New("disk full")

func (f failingService) Put(ctx context.Context, path string, v secret.Value, o secret.PutOptions) (secret.VersionInfo, error) {
	if path == f.path {
		return secret.VersionInfo{}, fmt.Errorf("%w: %w", secret.ErrAudit, errDisk)
	}
	return f.Service.Put(ctx, path, v, o)
}

func (f failingService) UpdateMetadata(ctx context.Context, path string, u secret.MetadataUpdate) (secret.Metadata, error) {
	if path == f.path {
		return secret.Metadata{}, fmt.Errorf("%w: %w", secret.ErrAudit, errDisk)
	}
	return f.Service.UpdateMetadata(ctx, path, u)
}

// TestApplyPartialFailure checks that a write failing mid-way returns
// what was done and the error, and that a later apply finishes the job.
func TestApplyPartialFailure(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	seedScenario(t, store)
	m := loadScenario(t)
	res, err := manifest.Apply(t.Context(), failingService{store, "prod/db/user"}, m)
	if !errors.Is(err, errDisk) || !errors.Is(err, secret.ErrAudit) || !strings.Contains(err.Error(), "apply: update prod/db/user metadata") {
		t.Fatalf("Apply error = %v", err)
	}
	want := manifest.ApplyResult{
		Created: []string{},
		Updated: []string{"prod/api/key", "prod/api/secret", "prod/app/token", "prod/db/password"},
		Skipped: []manifest.Change{
			{Kind: manifest.KindDrift, Path: "legacy/old-token"},
			{Kind: manifest.KindMissingStatic, Path: "prod/tls/key", Line: 29},
			{Kind: manifest.KindDrift, Path: "zz/unmanaged"},
		},
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("partial result (-want +got):\n%s", diff)
	}
	res, err = manifest.Apply(t.Context(), store, m)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"prod/db/user"}, res.Updated); diff != "" {
		t.Errorf("second apply updated (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"prod/new/token"}, res.Created); diff != "" {
		t.Errorf("second apply created (-want +got):\n%s", diff)
	}
}

// TestApplyCreateConflict: a secret created between plan and write (by
// someone else) is not overwritten: CAS 0 fails with ErrConflict.
func TestApplyCreateConflict(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	m, err := manifest.Parse("m.yaml", []byte("secrets:\n  - path: race\n    generate: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = manifest.Apply(t.Context(), racingService{store}, m)
	if !errors.Is(err, secret.ErrConflict) {
		t.Fatalf("Apply = %v, want ErrConflict", err)
	}
	v, err := store.Get(t.Context(), "race", secret.Selector{})
	if err != nil || string(v.Value.Reveal()) != "theirs" {
		t.Fatalf("the other writer's value was replaced: %v", err)
	}
}

// racingService writes the path itself just before apply's Put.
type racingService struct{ passman.Service }

func (r racingService) Put(ctx context.Context, path string, v secret.Value, o secret.PutOptions) (secret.VersionInfo, error) {
	if _, err := r.Service.Put(ctx, path, secret.NewValue([]byte("theirs")), secret.PutOptions{}); err != nil {
		return secret.VersionInfo{}, err
	}
	return r.Service.Put(ctx, path, v, o)
}

// TestStoreLintInputNamesConnections: linting the store shows each
// secret's rotation period and connection, as linting a manifest does,
// never its params.
func TestStoreLintInputNamesConnections(t *testing.T) {
	t.Parallel()
	l := newStore(t)
	ctx := context.Background()
	period := secret.Duration(720 * time.Hour)
	md := &secret.MetadataUpdate{RotationPeriod: &period, Rotation: &secret.Rotation{Connection: secret.GeneratedConnection}}
	if _, err := l.Put(ctx, "prod/rotated", secret.NewValue([]byte("value-1")), secret.PutOptions{Metadata: md}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Put(ctx, "prod/plain", secret.NewValue([]byte("value-2")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	in, err := manifest.StoreLintInput(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*policy.LintRotation{}
	for _, s := range in.Secrets {
		got[s.Path] = s.Rotation
	}
	if r := got["prod/rotated"]; r == nil || r.Connection != "generated" || r.Period != "720h0m0s" {
		t.Errorf("rotated secret: %+v", r)
	}
	if got["prod/plain"] != nil {
		t.Errorf("plain secret has a rotation: %+v", got["prod/plain"])
	}
}
