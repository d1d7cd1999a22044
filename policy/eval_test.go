package policy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/secret"
)

func TestEval(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{Dir: "testdata/authz"})
	ctx := context.Background()
	input := map[string]any{
		"subject": map[string]any{"id": "dana", "kind": "user"},
		"action":  "read",
		"path":    "prod/db/password",
		"store":   map[string]any{"created_by": "alice"},
		"time":    "2026-03-01T12:00:00Z",
	}
	res, err := e.Eval(ctx, DecisionAuthz, input, true)
	if err != nil {
		t.Fatal(err)
	}
	want := Decision{Allow: true, Reasons: []string{"dana is in team db, which owns prod/db/"}, Revision: e.Revision()}
	if diff := cmp.Diff(want, res.Result); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	trace := strings.Join(res.Explanation, "\n")
	for _, s := range []string{"testdata/authz/teams.rego:", "bundled/authz.rego:", "Enter data.passman.authz.allow"} {
		if !strings.Contains(trace, s) {
			t.Errorf("explanation lacks %q:\n%s", s, trace)
		}
	}

	// Raw JSON works too, and without explain there is no trace.
	res, err = e.Eval(ctx, DecisionRespond, []byte(`{"finding": {}, "secret": {"path": "prod/a", "version": 1, "stages": ["pending"], "state": "active"}}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := res.Result.(Response); !ok || len(r.Actions) != 1 || r.Actions[0].Action != RespondNotify || res.Explanation != nil {
		t.Errorf("respond eval = %+v", res)
	}
	res, err = e.Eval(ctx, DecisionLint, map[string]any{"source": "store", "secrets": []any{map[string]any{"path": "dev/a", "owner": "x", "description": "y"}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := res.Result.(LintReport); !ok || len(r.Deny)+len(r.Warn)+len(r.Excepted) != 0 {
		t.Errorf("lint eval = %+v", res)
	}
}

func TestEvalErrors(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	tests := []struct {
		name     string
		decision string
		input    any
		want     string
	}{
		{"unknown decision", "deploy", map[string]any{}, `unknown decision "deploy"`},
		{"unknown field", DecisionAuthz, map[string]any{"subject": map[string]any{"id": "a", "kind": "user"}, "action": "list", "sudo": true}, `unknown field "sudo"`},
		{"not JSON", DecisionLint, []byte("{"), "input"},
		{"invalid input", DecisionAuthz, map[string]any{"subject": map[string]any{"id": "a", "kind": "user"}, "action": "fly"}, `unknown action "fly"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.Eval(context.Background(), tt.decision, tt.input, true)
			if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrInvalidArgument containing %q", err, tt.want)
			}
		})
	}
}
