package manifest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/generator"
	"github.com/passman-dev/passman/manifest"
	"github.com/passman-dev/passman/secret"
)

func TestParseTestdata(t *testing.T) {
	t.Parallel()
	for _, c := range loadCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, err := manifest.Parse("passman.yaml", c.data)
			if len(c.errors) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if err := m.Validate(); err != nil {
					t.Fatalf("accepted manifest does not re-validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted a bad manifest: %+v", m)
			}
			if diff := cmp.Diff(strings.Join(c.errors, "\n"), err.Error()); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if !errors.Is(err, secret.ErrInvalidArgument) {
				t.Errorf("error does not wrap ErrInvalidArgument: %v", err)
			}
			var es manifest.Errors
			if !errors.As(err, &es) || len(es) != len(c.errors) {
				t.Errorf("error is not manifest.Errors with %d entries: %#v", len(c.errors), err)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("error leaks the value or a pasted path: %v", err)
			}
		})
	}
}

func TestParseExample(t *testing.T) {
	t.Parallel()
	var data []byte
	for _, c := range loadCases(t) {
		if c.name == "good_example" {
			data = c.data
		}
	}
	m, err := manifest.Parse("passman.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	want := &manifest.Manifest{
		File:     "passman.yaml",
		Policies: "./policies",
		Secrets: []manifest.Secret{{
			Path: "prod/app/token", Owner: "team-app", Description: "API token for app",
			Tags:     map[string]string{"env": "prod"},
			Generate: &generator.Spec{Length: 32, Classes: []generator.Class{generator.Upper, generator.Lower, generator.Digits}},
			Rotation: &manifest.Rotation{
				Period:     secret.Duration(720 * 3600 * 1e9),
				Connection: "app-deliver",
				Params:     map[string]any{"name": "APP_TOKEN"},
			},
			Line: 2, Column: 5,
		}},
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func TestParseDefaultsAndConfig(t *testing.T) {
	t.Parallel()
	m, err := manifest.Parse("passman.yaml", mustCase(t, "good_full"))
	if err != nil {
		t.Fatal(err)
	}
	dev := m.Secrets[2]
	if dev.Path != "dev/app/token" || dev.Generate.Length != 32 || len(dev.Generate.Classes) != 3 {
		t.Errorf("generate: {} did not get the defaults: %+v", dev.Generate)
	}
	cfg := m.Secrets[0].Rotation.Params
	want := map[string]any{"role": "app_a", "timeout": int64(30), "retries": 2.5, "dry_run": false}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if m.Secrets[0].Tags["since"] != "2024-01-01" {
		t.Errorf("a date-like tag value is not kept as text: %q", m.Secrets[0].Tags["since"])
	}
	if m.Secrets[0].Rotation.Period.String() != "720h0m0s" {
		t.Errorf("30d = %v", m.Secrets[0].Rotation.Period)
	}
}

func mustCase(t testing.TB, name string) []byte {
	t.Helper()
	for _, c := range loadCases(t) {
		if c.name == name {
			return c.data
		}
	}
	t.Fatalf("no case %s", name)
	return nil
}

// TestValueNeverLeaks feeds value: fields holding a canary through every
// output: errors, lint document, plan refusal, Validate.
func TestValueNeverLeaks(t *testing.T) {
	t.Parallel()
	m, err := manifest.Parse("passman.yaml", mustCase(t, "good_value"))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Secrets[0].HasValue {
		t.Fatal("HasValue not set")
	}
	doc, err := json.Marshal(m.LintDocument())
	if err != nil {
		t.Fatal(err)
	}
	outs := []string{string(doc), fmt.Sprintf("%+v %#v", m, m)}
	if !strings.Contains(string(doc), `"value_present":true`) {
		t.Errorf("lint document does not flag the value: %s", doc)
	}
	_, planErr := manifest.MakePlan(t.Context(), newStore(t), m)
	_, applyErr := manifest.Apply(t.Context(), newStore(t), m)
	for _, err := range []error{planErr, applyErr} {
		if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), "passman.yaml:2:5: secret legacy/token has a value: field") {
			t.Errorf("plan/apply did not refuse the value naming path and line: %v", err)
		}
		outs = append(outs, err.Error())
	}
	for _, o := range outs {
		if strings.Contains(o, canary) {
			t.Errorf("value leaked: %s", o)
		}
	}
}

func TestLintDocument(t *testing.T) {
	t.Parallel()
	m, err := manifest.Parse("passman.yaml", mustCase(t, "good_full"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m.LintDocument())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	secrets := got["secrets"].([]any)
	first := secrets[0].(map[string]any)
	want := map[string]any{
		"path": "prod/db/password", "owner": "team-db", "line": 4.0,
		"description": "Primary database password.\nRotated monthly;\tdelivered by the exec connector.\n",
		"tags":        map[string]any{"env": "prod", "tier": "1", "team/cost-center": "cc-42", "since": "2024-01-01"},
		"generate":    map[string]any{"length": 48.0, "classes": []any{"upper", "lower", "digits", "symbols"}},
		"rotation":    map[string]any{"period": "720h0m0s", "connection": "pg-main"},
	}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Errorf("lint secret (-want +got):\n%s", diff)
	}
	static := secrets[1].(map[string]any)
	if diff := cmp.Diff(map[string]any{"path": "prod/tls/key", "owner": "team-edge", "static": true, "line": 25.0}, static); diff != "" {
		t.Errorf("static secret (-want +got):\n%s", diff)
	}
	if got["source"] != "manifest" || len(secrets) != 4 {
		t.Errorf("document: %s", b)
	}
}

// TestValidate checks a manifest built in code, as the CLI or the
// Terraform provider might, against the same rules as Parse.
func TestValidate(t *testing.T) {
	t.Parallel()
	good := func() *manifest.Manifest {
		return &manifest.Manifest{File: "m", Secrets: []manifest.Secret{{Path: "a", Static: true, Line: 1, Column: 3}}}
	}
	if err := good().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		edit func(m *manifest.Manifest)
		want string
	}{
		"no secrets": {func(m *manifest.Manifest) { m.Secrets = nil }, "m:1:1: no secrets"},
		"bad path":   {func(m *manifest.Manifest) { m.Secrets[0].Path = "x y" }, "m:1:3: invalid path: segment 1"},
		"neither":    {func(m *manifest.Manifest) { m.Secrets[0].Static = false }, "m:1:3: declare generate or static"},
		"bad spec": {func(m *manifest.Manifest) {
			m.Secrets[0].Static, m.Secrets[0].Generate = false, &generator.Spec{Length: 3}
		}, "m:1:3: generate: generated length 3 out of range"},
		"zero period":    {func(m *manifest.Manifest) { m.Secrets[0].Rotation = &manifest.Rotation{} }, "rotation.period: must be a positive"},
		"absolute":       {func(m *manifest.Manifest) { m.Policies = "/p" }, "policies: must be a path relative"},
		"tag":            {func(m *manifest.Manifest) { m.Secrets[0].Tags = map[string]string{"k": ""} }, "tags.k: empty tag value"},
		"duplicate path": {func(m *manifest.Manifest) { m.Secrets = append(m.Secrets, m.Secrets[0]) }, "duplicate secret path a (first declared at line 1)"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := good()
			tc.edit(m)
			err := m.Validate()
			if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}
