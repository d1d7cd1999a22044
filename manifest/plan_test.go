package manifest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/manifest"
	"github.com/passman-dev/passman/secret"
)

// seedScenario fills a store with what testdata/golden/scenario.yaml is
// compared against: one secret per kind of difference, plus drift.
func seedScenario(t *testing.T, svc passman.Service) {
	t.Helper()
	str := func(s string) *string { return &s }
	dur := func(s string) *secret.Duration {
		d, err := secret.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return &d
	}
	for path, md := range map[string]secret.MetadataUpdate{
		"prod/app/token":   {Owner: str("team-app"), Description: str("API token for app"), Tags: map[string]string{"env": "prod"}, RotationPeriod: dur("720h")},
		"prod/db/password": {Owner: str("team-db")},
		"prod/db/user":     {Owner: str("team-dba"), Description: str("Login name.")},
		"prod/api/key":     {Tags: map[string]string{"env": "staging", "legacy": "yes"}},
		"prod/api/secret":  {RotationPeriod: dur("720h")},
		"prod/tls/cert":    {},
		"legacy/old-token": {Owner: str("nobody")},
		"zz/unmanaged":     {},
	} {
		if _, err := svc.Put(t.Context(), path, secret.NewValue([]byte("seed-"+path)), secret.PutOptions{Metadata: &md}); err != nil {
			t.Fatal(err)
		}
	}
}

func loadScenario(t *testing.T) *manifest.Manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "golden", "scenario.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse("scenario.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func render(t *testing.T, p *manifest.Plan, format string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := manifest.WritePlan(&b, format, p); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestPlanGolden(t *testing.T) {
	t.Parallel()
	svc := newStore(t)
	seedScenario(t, svc)
	m := loadScenario(t)
	p, err := manifest.MakePlan(t.Context(), svc, m)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "plan.txt", render(t, p, "text"))
	golden(t, "plan.json", render(t, p, "json"))
	var back manifest.Plan
	if err := json.Unmarshal(render(t, p, "json"), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, &back); diff != "" {
		t.Errorf("JSON round trip (-plan +decoded):\n%s", diff)
	}
	if !p.HasChanges() {
		t.Error("HasChanges = false")
	}

	res, err := manifest.Apply(t.Context(), svc, m)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "apply.json", append(out, '\n'))

	// Idempotent: what is left is what apply must not touch.
	again, err := manifest.MakePlan(t.Context(), svc, m)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "replan.txt", render(t, again, "text"))
	for _, c := range again.Changes {
		if c.Kind == manifest.KindCreate || c.Kind == manifest.KindUpdate {
			t.Errorf("after apply, plan still has %s %s", c.Kind, c.Path)
		}
	}
	res2, err := manifest.Apply(t.Context(), svc, m)
	if err != nil || len(res2.Created)+len(res2.Updated) != 0 {
		t.Fatalf("second apply: %+v, %v", res2, err)
	}

	// The metadata landed as declared, on created and updated secrets.
	for path, want := range map[string]secret.Metadata{
		"prod/new/token":  {Owner: "team-new", Tags: map[string]string{"env": "prod"}, RotationPeriod: 90 * 24 * 3600e9},
		"prod/api/key":    {Tags: map[string]string{"env": "prod", "tier": "1"}},
		"prod/api/secret": {RotationPeriod: 60 * 24 * 3600e9},
	} {
		s, err := svc.Describe(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		got := secret.Metadata{Owner: s.Metadata.Owner, Description: s.Metadata.Description, Tags: s.Metadata.Tags, RotationPeriod: s.Metadata.RotationPeriod}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s metadata (-want +got):\n%s", path, diff)
		}
	}
}

// TestPlanCleanStore checks that a manifest applied to an empty store
// leaves nothing to do at all.
func TestPlanCleanStore(t *testing.T) {
	t.Parallel()
	svc := newStore(t)
	m, err := manifest.Parse("m.yaml", []byte("secrets:\n  - path: a\n    owner: o\n    generate: {}\n  - path: b/c\n    tags: {k: v}\n    generate: {length: 64}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := manifest.Apply(t.Context(), svc, m); err != nil {
		t.Fatal(err)
	}
	p, err := manifest.MakePlan(t.Context(), svc, m)
	if err != nil {
		t.Fatal(err)
	}
	if p.HasChanges() {
		t.Fatalf("plan after apply: %s", render(t, p, "text"))
	}
	golden(t, "nochange.txt", render(t, p, "text"))
	golden(t, "nochange.json", render(t, p, "json"))
}

// TestPlanPaginates uses more secrets than one List page holds, and
// counts the List calls: one per page, never one call per secret.
func TestPlanPaginates(t *testing.T) {
	t.Parallel()
	svc := &countingService{Service: newStore(t)}
	n := secret.MaxListLimit*2 + 5
	for i := range n {
		if _, err := svc.Put(t.Context(), pathN(i), secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	m := &manifest.Manifest{File: "m"}
	for i := range n - 1 {
		m.Secrets = append(m.Secrets, manifest.Secret{Path: pathN(i), Static: true, Line: i + 1, Column: 3})
	}
	svc.calls = map[string]int{}
	p, err := manifest.MakePlan(t.Context(), svc, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || p.Changes[0].Kind != manifest.KindDrift || p.Changes[0].Path != pathN(n-1) {
		t.Fatalf("plan: %+v", p.Changes)
	}
	if diff := cmp.Diff(map[string]int{"List": 3}, svc.calls); diff != "" {
		t.Errorf("service calls (-want +got):\n%s", diff)
	}
}

func pathN(i int) string { return "bulk/s" + string(rune('a'+i%26)) + "/" + itoa(i) }

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// countingService counts the calls MakePlan and Apply make.
type countingService struct {
	passman.Service
	calls map[string]int
}

func (c *countingService) List(ctx context.Context, o secret.ListOptions) (secret.ListPage, error) {
	if c.calls != nil {
		c.calls["List"]++
	}
	return c.Service.List(ctx, o)
}

func (c *countingService) Describe(ctx context.Context, path string) (secret.Secret, error) {
	if c.calls != nil {
		c.calls["Describe"]++
	}
	return c.Service.Describe(ctx, path)
}

func TestWritePlanUnknownFormat(t *testing.T) {
	t.Parallel()
	err := manifest.WritePlan(&bytes.Buffer{}, "yaml", &manifest.Plan{})
	if err == nil || err.Error() != `invalid argument: unknown plan format "yaml" (want text or json)` {
		t.Fatalf("WritePlan yaml: %v", err)
	}
	if got := string(render(t, &manifest.Plan{}, "json")); got != "{\n  \"changes\": []\n}\n" {
		t.Errorf("empty plan JSON = %q", got)
	}
}
