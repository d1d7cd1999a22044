package policy

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/passman-dev/passman/secret"
)

// TestAuthzValueMatchesJSON holds the hand-built authz document equal to
// the JSON encoding that the schema documents and rego.EvalInput would use.
func TestAuthzValueMatchesJSON(t *testing.T) {
	t.Parallel()
	full := &secret.Metadata{
		Owner: "team-app", Description: "token", Tags: map[string]string{"env": "prod", "tier": "1"},
		Custom: map[string]string{"ticket": "SEC-1"}, RotationPeriod: secret.Duration(90 * 24 * time.Hour), MaxVersions: 7,
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC), CreatedBy: "alice",
		UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)), UpdatedBy: "bob",
	}
	tests := map[string]AuthzInput{
		"minimal": {Subject: Subject{ID: "a", Kind: KindUser}, Action: ActionList},
		"full": {
			Subject: Subject{ID: "repo:acme/app", Kind: KindGitHubOIDC, Claims: map[string]any{
				"repository": "acme/app", "run_number": 42, "aud": []string{"passman"}, "nested": map[string]any{"x": 1.5, "ok": true, "none": nil},
			}},
			Action: ActionRead, Path: "prod/app/token", Secret: full, Store: StoreInfo{CreatedBy: "alice"}, Time: testTime,
		},
		"empty metadata": {Subject: Subject{ID: "a", Kind: KindToken, Claims: map[string]any{}}, Action: ActionWrite, Path: "x", Secret: &secret.Metadata{}},
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := authzValue(in)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ast.ValueFromReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if got.Compare(want) != 0 {
				t.Errorf("document differs from its JSON encoding:\n got  %v\n want %v", got, want)
			}
		})
	}
}

// TestAuthzValueFields fails when an input type gains a field, so that
// authzValue and metadataValue are extended with it.
func TestAuthzValueFields(t *testing.T) {
	t.Parallel()
	for typ, n := range map[reflect.Type]int{
		reflect.TypeFor[AuthzInput]():      7,
		reflect.TypeFor[Subject]():         3,
		reflect.TypeFor[StoreInfo]():       1,
		reflect.TypeFor[secret.Metadata](): 12,
	} {
		if typ.NumField() != n {
			t.Errorf("%v has %d fields, authzValue knows %d: update input.go and this test", typ, typ.NumField(), n)
		}
	}
}
