package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// evalCanary is in the eval inputs: no audit entry may hold it.
const evalCanary = "eval-canary-51c0ffee"

// evalInput asks whether a token may read a path whose name holds the
// canary: no policy but the creator's admin rule allows it.
const evalInput = `{"subject": {"id": "ci", "kind": "token", "claims": {"note": "` + evalCanary + `"}},
 "action": "read", "path": "app/` + evalCanary + `", "store": {"created_by": "alice"}}`

// TestEvalPolicy: evaluating the store's policies is an admin action,
// authorized and audited by decision name, never with the input.
func TestEvalPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	l := open(t, opts)

	res, err := l.EvalPolicy(ctx, policy.DecisionAuthz, json.RawMessage(evalInput), true)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := res.Result.(policy.Decision); !ok || d.Allow || d.Revision == "" || len(res.Explanation) == 0 {
		t.Errorf("eval: %#v, %d lines of explanation", res.Result, len(res.Explanation))
	}
	// An input the decision's schema refuses is the caller's mistake.
	if _, err := l.EvalPolicy(ctx, policy.DecisionLint, json.RawMessage(`{"bogus": true}`), false); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("eval of a bad input: %v", err)
	}
	if _, err := l.EvalPolicy(ctx, evalCanary, json.RawMessage(evalInput), false); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("eval of an unknown decision: %v", err)
	}
	// A token with no admin rule is refused before anything is evaluated.
	tok := core.WithSubject(ctx, policy.Subject{ID: "ci", Kind: policy.KindToken})
	if _, err := l.EvalPolicy(tok, policy.DecisionAuthz, json.RawMessage(evalInput), false); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Errorf("eval as a token: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	var got []string
	for _, e := range entries(t, opts) {
		if e.Action == core.ActionPolicyEval {
			got = append(got, e.Actor+":"+string(e.Outcome)+":"+e.ErrorClass+":"+e.Details["decision"])
		}
	}
	want := "alice:success::authz alice:failure:invalid_argument:lint alice:failure:invalid_argument: ci:denied:permission_denied:authz"
	if strings.Join(got, " ") != want {
		t.Errorf("policy.eval entries:\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	b, err := os.ReadFile(filepath.Join(opts.Dir, core.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), evalCanary) {
		t.Error("the audit log holds the eval input or decision text")
	}
}

// allowAll allows everything: an Authorizer that is no policy engine.
type allowAll struct{}

func (allowAll) Authorize(context.Context, policy.AuthzInput) (policy.Decision, error) {
	return policy.Decision{Allow: true, Revision: "sha256:test"}, nil
}

// TestPolicyDecisionsNeedAnEngine: a store whose authorizer is not a
// policy engine has no other decisions to evaluate.
func TestPolicyDecisionsNeedAnEngine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	opts.Authorizer = allowAll{}
	l := open(t, opts)
	if _, err := l.EvalPolicy(ctx, policy.DecisionAuthz, json.RawMessage(evalInput), false); !errors.Is(err, secret.ErrPrecondition) {
		t.Errorf("eval: %v", err)
	}
	if _, err := core.DecideLeakResponse(l, ctx, policy.RespondInput{Secret: policy.RespondSecret{Path: "app/x", Version: 1, State: "active"}}); !errors.Is(err, secret.ErrPrecondition) {
		t.Errorf("respond decision: %v", err)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	opts.Authorizer = denyAll{}
	denied := open(t, opts)
	defer denied.Close()
	if _, err := denied.EvalPolicy(ctx, policy.DecisionAuthz, json.RawMessage(evalInput), false); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Errorf("eval under a policy that refuses everything: %v", err)
	}
}

// TestDecideLeakResponse asks the store's respond policy, as a server's
// response to a leak does.
func TestDecideLeakResponse(t *testing.T) {
	t.Parallel()
	l := open(t, initStore(t, audit.SyncWrite))
	defer l.Close()
	r, err := core.DecideLeakResponse(l, context.Background(), policy.RespondInput{
		Finding: map[string]any{"rule": "passman-managed", "file": "app.env", "line": 1},
		Secret:  policy.RespondSecret{Path: "app/x", Version: 2, Stages: []string{"current"}, State: "active"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range r.Actions {
		actions = append(actions, a.Action)
	}
	if got := strings.Join(actions, ","); got != "rotate,revoke_previous,notify" || r.Revision == "" {
		t.Errorf("response: %+v", r)
	}
}
