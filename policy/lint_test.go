package policy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/secret"
)

// goodSecret passes every bundled rule.
func goodSecret() LintSecret {
	return LintSecret{
		Path:        "prod/db/password",
		Owner:       "team-db",
		Description: "primary database password",
		Tags:        map[string]string{"env": "prod"},
		Generate:    &LintGenerate{Length: 32, Classes: []string{"upper", "lower", "digits"}},
		Rotation:    &LintRotation{Period: "720h"},
	}
}

func with(f func(*LintSecret)) LintSecret {
	s := goodSecret()
	f(&s)
	return s
}

func deny(rule, path, msg string) LintFinding { return LintFinding{Rule: rule, Path: path, Msg: msg} }

func TestLintBundledRules(t *testing.T) {
	t.Parallel()
	const db = "prod/db/password"
	tests := []struct {
		name    string
		config  map[string]any
		secrets []LintSecret
		deny    []LintFinding
		warn    []LintFinding
	}{
		{name: "compliant", secrets: []LintSecret{goodSecret()}},
		{name: "owner_required fails", secrets: []LintSecret{with(func(s *LintSecret) { s.Owner = "" })},
			deny: []LintFinding{deny("owner_required", db, "owner is required: name the team or person who answers for this secret")}},
		{name: "rotation_required fails", secrets: []LintSecret{with(func(s *LintSecret) { s.Rotation = nil })},
			deny: []LintFinding{deny("rotation_required", db, "production secret needs a rotation period")}},
		{name: "rotation_required connection only", secrets: []LintSecret{with(func(s *LintSecret) { s.Rotation = &LintRotation{Connection: "pg-main"} })},
			deny: []LintFinding{deny("rotation_required", db, "production secret needs a rotation period")}},
		{name: "rotation_required passes outside production", secrets: []LintSecret{with(func(s *LintSecret) { s.Path, s.Rotation, s.Tags = "dev/db/password", nil, nil })}},
		{name: "rotation_max fails", secrets: []LintSecret{with(func(s *LintSecret) { s.Rotation.Period = "4320h" })},
			deny: []LintFinding{deny("rotation_max", db, "rotation period 4320h exceeds the maximum 2160h for production secrets")}},
		{name: "rotation_max fails in days", secrets: []LintSecret{with(func(s *LintSecret) { s.Rotation.Period = "91d" })},
			deny: []LintFinding{deny("rotation_max", db, "rotation period 2184h exceeds the maximum 2160h for production secrets")}},
		{name: "rotation_max passes at the limit", secrets: []LintSecret{with(func(s *LintSecret) { s.Rotation.Period = "90d" })}},
		{name: "rotation_max follows config", config: map[string]any{"max_rotation_period": "168h"}, secrets: []LintSecret{goodSecret()},
			deny: []LintFinding{deny("rotation_max", db, "rotation period 720h exceeds the maximum 168h for production secrets")}},
		{name: "no_plaintext_value fails", secrets: []LintSecret{with(func(s *LintSecret) { s.Generate, s.Static, s.ValuePresent, s.Line = nil, true, true, 7 })},
			deny: []LintFinding{deny("no_plaintext_value", db, "value is written in plaintext in the manifest: remove it and use generate, or set it with passman secret put (line 7)")}},
		{name: "no_plaintext_value passes for static", secrets: []LintSecret{with(func(s *LintSecret) { s.Generate, s.Static = nil, true })}},
		{name: "generator_strength fails", secrets: []LintSecret{with(func(s *LintSecret) { s.Generate = &LintGenerate{Length: 12, Classes: []string{"digits", "digits"}} })},
			deny: []LintFinding{
				deny("generator_strength", db, "generated length 12 is below the minimum 16"),
				deny("generator_strength", db, "generator uses 1 character classes, want at least 2"),
			}},
		{name: "generator_strength passes with defaults", secrets: []LintSecret{with(func(s *LintSecret) { s.Generate = &LintGenerate{} })}},
		{name: "generator_strength follows config", config: map[string]any{"min_generated_length": 40, "min_generated_classes": 4}, secrets: []LintSecret{goodSecret()},
			deny: []LintFinding{
				deny("generator_strength", db, "generated length 32 is below the minimum 40"),
				deny("generator_strength", db, "generator uses 3 character classes, want at least 4"),
			}},
		{name: "tags_required fails", secrets: []LintSecret{with(func(s *LintSecret) { s.Tags = map[string]string{"env": "", "tier": "1"} })},
			deny: []LintFinding{deny("tags_required", db, `tag "env" is required for secrets under prod/`)}},
		{name: "tags_required follows config", config: map[string]any{"required_tags": map[string][]string{"prod/db/": {"env", "tier"}}}, secrets: []LintSecret{goodSecret()},
			deny: []LintFinding{deny("tags_required", db, `tag "tier" is required for secrets under prod/db/`)}},
		{name: "production prefixes follow config", config: map[string]any{"production_prefixes": []string{"live/"}}, secrets: []LintSecret{with(func(s *LintSecret) { s.Rotation = nil })}},
		{name: "description_recommended warns", secrets: []LintSecret{with(func(s *LintSecret) { s.Description, s.Line = "", 3 })},
			warn: []LintFinding{deny("description_recommended", db, "a description is recommended: say what the secret is for and who uses it (line 3)")}},
		{name: "sorted by path", secrets: []LintSecret{
			with(func(s *LintSecret) { s.Path, s.Owner = "prod/z", "" }),
			with(func(s *LintSecret) { s.Path, s.Owner, s.Tags = "prod/a", "", nil }),
		}, deny: []LintFinding{
			deny("owner_required", "prod/a", "owner is required: name the team or person who answers for this secret"),
			deny("tags_required", "prod/a", `tag "env" is required for secrets under prod/`),
			deny("owner_required", "prod/z", "owner is required: name the team or person who answers for this secret"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEngine(t, Options{Config: tt.config})
			got, err := e.Lint(context.Background(), LintInput{Source: SourceManifest, Secrets: tt.secrets})
			if err != nil {
				t.Fatal(err)
			}
			want := LintReport{Deny: tt.deny, Warn: tt.warn, Excepted: []LintFinding{}, Revision: e.Revision()}
			if want.Deny == nil {
				want.Deny = []LintFinding{}
			}
			if want.Warn == nil {
				want.Warn = []LintFinding{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLintUserRulesAndExceptions(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{Dir: "testdata/lint"})
	secrets := []LintSecret{
		with(func(s *LintSecret) { s.Path, s.Rotation, s.Description = "prod/legacy/ftp", nil, "" }),
		with(func(s *LintSecret) { s.Path, s.Rotation = "prod/legacy/smtp", nil }),
		with(func(s *LintSecret) { s.Path, s.Owner = "prod/app/key", "carol" }),
	}
	got, err := e.Lint(context.Background(), LintInput{Source: SourceStore, Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	want := LintReport{
		Deny: []LintFinding{
			deny("owner_is_team", "prod/app/key", `owner "carol" is not a team (want team-...)`),
			deny("rotation_required", "prod/legacy/smtp", "production secret needs a rotation period"),
		},
		Warn: []LintFinding{},
		Excepted: []LintFinding{
			deny("description_recommended", "prod/legacy/ftp", "a description is recommended: say what the secret is for and who uses it"),
			deny("rotation_required", "prod/legacy/ftp", "production secret needs a rotation period"),
		},
		Revision: e.Revision(),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
}

func TestLintInvalid(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	tests := []struct {
		name string
		in   LintInput
		want string
	}{
		{"unknown source", LintInput{Source: "git", Secrets: []LintSecret{goodSecret()}}, `lint source "git"`},
		{"empty path", LintInput{Source: SourceManifest, Secrets: []LintSecret{{Owner: "x", Line: 9}}}, "line 9: secret has no path"},
		{"bad period", LintInput{Source: SourceManifest, Secrets: []LintSecret{with(func(s *LintSecret) { s.Rotation.Period = "monthly" })}}, "secret 1 prod/db/password: rotation period"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.Lint(context.Background(), tt.in)
			if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrInvalidArgument containing %q", err, tt.want)
			}
		})
	}
}

func TestLintBadPolicyResult(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"string finding":      "package passman.lint\n\ndeny contains \"no\" if true\n",
		"finding sans msg":    "package passman.lint\n\nwarn contains {\"rule\": \"x\"} if true\n",
		"exception sans rule": "package passman.lint\n\nexception contains {\"path\": \"prod/x\"}\n",
	}
	for name, text := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"bad.rego": text})
			e := newEngine(t, Options{Dir: dir})
			_, err := e.Lint(context.Background(), LintInput{Source: SourceStore, Secrets: []LintSecret{goodSecret()}})
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("err = %v, want ErrInvalidPolicy", err)
			}
		})
	}
}

func TestLintDoesNotModifyInput(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	in := LintInput{Source: SourceManifest, Secrets: []LintSecret{with(func(s *LintSecret) { s.Rotation.Period, s.Generate = "30d", &LintGenerate{} })}}
	if _, err := e.Lint(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if in.Secrets[0].Rotation.Period != "30d" || in.Secrets[0].Generate.Length != 0 {
		t.Errorf("Lint modified its input: %+v %+v", in.Secrets[0].Rotation, in.Secrets[0].Generate)
	}
}
