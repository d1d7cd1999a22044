package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/passman-dev/passman/secret"
)

// compileSchema compiles a decision's input schema with formats asserted.
func compileSchema(t *testing.T, decision string) (*jsonschema.Schema, map[string]any) {
	t.Helper()
	b, err := Schema(decision)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s schema is not JSON: %v", decision, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	url := decision + ".input.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatalf("compile %s schema: %v", decision, err)
	}
	return sch, doc.(map[string]any)
}

// asJSON turns a Go value into the generic form the validator takes.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// clone deep-copies a generic JSON value via encoding/json.
func clone(t *testing.T, v any) map[string]any {
	t.Helper()
	var out map[string]any
	b, _ := json.Marshal(v)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSchemas(t *testing.T) {
	t.Parallel()
	meta := &secret.Metadata{
		Owner: "team-app", Description: "API token", Tags: map[string]string{"env": "prod"},
		Custom: map[string]string{"ticket": "SEC-1"}, RotationPeriod: secret.Duration(720 * time.Hour), MaxVersions: 5,
		CreatedAt: testTime, CreatedBy: "alice", UpdatedAt: testTime, UpdatedBy: "alice",
	}
	tests := []struct {
		decision string
		goValue  any                               // a Go input value, marshalled
		breaks   map[string]func(m map[string]any) // each must make the example invalid
	}{
		{
			decision: DecisionAuthz,
			goValue: AuthzInput{
				Subject: Subject{ID: "repo:acme/app", Kind: KindGitHubOIDC, Claims: map[string]any{"repository": "acme/app", "ref": "refs/heads/main"}},
				Action:  ActionRead, Path: "prod/app/token", Secret: meta, Store: StoreInfo{CreatedBy: "alice"}, Time: testTime,
			},
			breaks: map[string]func(map[string]any){
				"unknown action": func(m map[string]any) { m["action"] = "execute" },
				"unknown kind":   func(m map[string]any) { m["subject"].(map[string]any)["kind"] = "robot" },
				"no subject id":  func(m map[string]any) { delete(m["subject"].(map[string]any), "id") },
				"read no path":   func(m map[string]any) { delete(m, "path") },
				"bad time":       func(m map[string]any) { m["time"] = "yesterday" },
				"extra field":    func(m map[string]any) { m["value"] = "hunter2" },
				"tag not string": func(m map[string]any) { m["secret"].(map[string]any)["tags"] = map[string]any{"tier": 1} },
			},
		},
		{
			decision: DecisionLint,
			goValue: LintInput{Source: SourceManifest, Secrets: []LintSecret{{
				Path: "prod/db/password", Owner: "team-db", Description: "db", Tags: map[string]string{"env": "prod"},
				Generate: &LintGenerate{Length: 32, Classes: []string{"upper", "digits"}},
				Rotation: &LintRotation{Period: "720h", Connection: "pg-main"}, Line: 4,
			}, {Path: "dev/x", Static: true, ValuePresent: true, Generate: &LintGenerate{}}}},
			breaks: map[string]func(map[string]any){
				"unknown source": func(m map[string]any) { m["source"] = "git" },
				"no secrets":     func(m map[string]any) { delete(m, "secrets") },
				"empty path":     func(m map[string]any) { m["secrets"].([]any)[0].(map[string]any)["path"] = "" },
				"value itself":   func(m map[string]any) { m["secrets"].([]any)[0].(map[string]any)["value"] = "hunter2" },
				"unknown class": func(m map[string]any) {
					m["secrets"].([]any)[0].(map[string]any)["generate"] = map[string]any{"length": 20, "classes": []any{"emoji"}}
				},
			},
		},
		{
			decision: DecisionRespond,
			goValue: RespondInput{
				Finding: map[string]any{"rule": "generic-api-key", "file": "a.env", "line": 3, "commit": "4f2c9e1", "author": "bob", "date": "2026-02-14"},
				Secret:  RespondSecret{Path: "prod/app/token", Version: 2, Stages: []string{"previous"}, State: "active", Metadata: meta},
			},
			breaks: map[string]func(map[string]any){
				"secret text":   func(m map[string]any) { m["finding"].(map[string]any)["secret"] = "hunter2" },
				"version 0":     func(m map[string]any) { m["secret"].(map[string]any)["version"] = 0 },
				"unknown stage": func(m map[string]any) { m["secret"].(map[string]any)["stages"] = []any{"live"} },
				"unknown state": func(m map[string]any) { m["secret"].(map[string]any)["state"] = "gone" },
				"no secret":     func(m map[string]any) { delete(m, "secret") },
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.decision, func(t *testing.T) {
			t.Parallel()
			sch, doc := compileSchema(t, tt.decision)
			examples, _ := doc["examples"].([]any)
			if len(examples) == 0 {
				t.Fatal("schema documents no example input")
			}
			for i, ex := range examples {
				if err := sch.Validate(ex); err != nil {
					t.Errorf("example %d does not validate: %v", i, err)
				}
				// The documented example is also accepted by the engine.
				if _, err := newEngine(t, Options{}).Eval(context.Background(), tt.decision, ex, false); err != nil {
					t.Errorf("example %d: Eval: %v", i, err)
				}
			}
			if err := sch.Validate(asJSON(t, tt.goValue)); err != nil {
				t.Errorf("Go input %T marshals to JSON the schema rejects: %v", tt.goValue, err)
			}
			for name, brk := range tt.breaks {
				bad := clone(t, examples[0])
				brk(bad)
				if err := sch.Validate(asJSON(t, bad)); err == nil {
					t.Errorf("broken example (%s) validates", name)
				}
			}
		})
	}
}

// TestSchemaMetadataInSync keeps the two copies of secret metadata equal:
// each schema stands alone, so respond does not $ref into authz.
func TestSchemaMetadataInSync(t *testing.T) {
	t.Parallel()
	_, authz := compileSchema(t, DecisionAuthz)
	_, respond := compileSchema(t, DecisionRespond)
	a := authz["$defs"].(map[string]any)["metadata"]
	r := respond["$defs"].(map[string]any)["metadata"]
	if diff := cmp.Diff(a, r); diff != "" {
		t.Errorf("metadata definitions differ (-authz +respond):\n%s", diff)
	}
}

func TestSchemaFiles(t *testing.T) {
	t.Parallel()
	for _, d := range Decisions {
		want, err := os.ReadFile("schema/" + d + ".input.json")
		if err != nil {
			t.Fatal(err)
		}
		got, err := Schema(d)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Schema(%q) = %d bytes, %v; want the file's %d bytes", d, len(got), err, len(want))
		}
	}
	if _, err := Schema("deploy"); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("Schema(deploy) err = %v, want ErrInvalidArgument", err)
	}
}
