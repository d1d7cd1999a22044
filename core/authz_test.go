package core_test

import (
	"context"
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

const teamPolicy = `package passman.authz

# bob may read the app's secrets, nothing else.
allow if {
	input.subject.kind == "user"
	input.subject.id == "bob"
	input.action == "read"
	startswith(input.path, "prod/app/")
}

reasons contains "bob reads prod/app" if {
	input.subject.id == "bob"
	input.action == "read"
	startswith(input.path, "prod/app/")
}

# The main branch of acme/app may read secrets owned by team-app.
allow if {
	input.subject.kind == "github-oidc"
	input.subject.claims.repository == "acme/app"
	input.subject.claims.ref == "refs/heads/main"
	input.action == "read"
	input.secret.owner == "team-app"
}
`

// TestEveryOperationIsAuthorized opens one store as its creator (the bundled
// policy makes her admin), as another OS user, and as a GitHub OIDC subject,
// and checks decisions, errors and the audit trail of each.
func TestEveryOperationIsAuthorized(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	opts.PolicyDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(opts.PolicyDir, "team.rego"), []byte(teamPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	alice := open(t, opts)
	owner := "team-app"
	for _, p := range []string{"prod/app/token", "prod/db/password"} {
		if _, err := alice.Put(ctx, p, secret.NewValue([]byte("v-"+p)), secret.PutOptions{Metadata: &secret.MetadataUpdate{Owner: &owner}}); err != nil {
			t.Fatalf("creator put %s: %v", p, err)
		}
	}
	if err := alice.Close(); err != nil {
		t.Fatal(err)
	}

	bobOpts := opts
	bobOpts.Actor = "bob"
	bob := open(t, bobOpts)
	if _, err := bob.Get(ctx, "prod/app/token", secret.Selector{}); err != nil {
		t.Fatalf("bob reading prod/app: %v", err)
	}
	_, err := bob.Get(ctx, "prod/db/password", secret.Selector{})
	if !errors.Is(err, secret.ErrPermissionDenied) || !strings.Contains(err.Error(), "no policy allows read on prod/db/password for user bob") {
		t.Fatalf("bob reading prod/db: %v", err)
	}
	if _, err := bob.Put(ctx, "prod/app/token", secret.NewValue([]byte("mine")), secret.PutOptions{}); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Fatalf("bob writing: %v", err)
	}
	if _, err := bob.List(ctx, secret.ListOptions{}); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Fatalf("bob listing: %v", err)
	}
	if _, err := bob.RotateKeys(ctx); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Fatalf("bob rotating keys: %v", err)
	}

	gh := core.WithSubject(ctx, policy.Subject{ID: "repo:acme/app:ref:refs/heads/main", Kind: "github-oidc",
		Claims: map[string]any{"repository": "acme/app", "ref": "refs/heads/main"}})
	if _, err := bob.Get(gh, "prod/db/password", secret.Selector{}); err != nil {
		t.Fatalf("main branch of acme/app reading a team-app secret: %v", err)
	}
	branch := core.WithSubject(ctx, policy.Subject{ID: "repo:acme/app:ref:refs/heads/feature", Kind: "github-oidc",
		Claims: map[string]any{"repository": "acme/app", "ref": "refs/heads/feature"}})
	if _, err := bob.Get(branch, "prod/db/password", secret.Selector{}); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Fatalf("a feature branch reading: %v", err)
	}
	if err := bob.Close(); err != nil {
		t.Fatal(err)
	}

	var denied, allowed []audit.Entry
	for _, e := range entries(t, opts) {
		if e.Decision == nil {
			continue
		}
		if !strings.HasPrefix(e.Decision.Revision, "sha256:") {
			t.Errorf("entry %d: decision without a policy revision: %+v", e.Seq, e.Decision)
		}
		if e.Outcome == audit.OutcomeDenied {
			denied = append(denied, e)
		} else {
			allowed = append(allowed, e)
		}
	}
	if len(denied) != 5 {
		t.Fatalf("%d denied entries, want 5: %+v", len(denied), denied)
	}
	for _, e := range denied {
		if e.Decision.Allow || len(e.Decision.Reasons) == 0 || e.ErrorClass != "permission_denied" {
			t.Errorf("denied entry %d: %+v", e.Seq, e)
		}
	}
	last := denied[len(denied)-1]
	if last.Actor != "repo:acme/app:ref:refs/heads/feature" || last.Path != "prod/db/password" {
		t.Errorf("the OIDC denial is recorded as %q on %q", last.Actor, last.Path)
	}
	if len(allowed) < 4 {
		t.Errorf("only %d allowed entries carry a decision", len(allowed))
	}
}

// denyAll refuses everything, as a policy that matches nothing does.
type denyAll struct{}

func (denyAll) Authorize(_ context.Context, in policy.AuthzInput) (policy.Decision, error) {
	return policy.Decision{Reasons: []string{"deny-all refuses " + in.Action}, Revision: "sha256:test"}, nil
}

// TestWriteShowsRequestedMetadataToPolicy lets bob write but not change
// owners: the policy sees the owner a write asks for, not only the stored one.
func TestWriteShowsRequestedMetadataToPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	populate(t, opts, 1)
	opts.PolicyDir = t.TempDir()
	rule := `package passman.authz

allow if {
	input.subject.id == "bob"
	input.action == "write"
}

deny contains "only the creator changes owners" if {
	input.subject.id == "bob"
	input.request.metadata.owner
}
`
	if err := os.WriteFile(filepath.Join(opts.PolicyDir, "p.rego"), []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	opts.Actor = "bob"
	l := open(t, opts)
	defer l.Close()
	if _, err := l.Put(ctx, "app/key", secret.NewValue([]byte("new")), secret.PutOptions{}); err != nil {
		t.Fatalf("bob writing a value: %v", err)
	}
	mine := "bob"
	_, err := l.UpdateMetadata(ctx, "app/key", secret.MetadataUpdate{Owner: &mine})
	if !errors.Is(err, secret.ErrPermissionDenied) || !strings.Contains(err.Error(), "only the creator changes owners") {
		t.Fatalf("bob taking ownership: %v", err)
	}
	_, err = l.Put(ctx, "app/key", secret.NewValue([]byte("x")), secret.PutOptions{Metadata: &secret.MetadataUpdate{Owner: &mine}})
	if !errors.Is(err, secret.ErrPermissionDenied) {
		t.Fatalf("bob taking ownership through put: %v", err)
	}
}

// TestRefusedGetLearnsNothing: a read the store refuses before the policy
// sees the record (a bad selector) still answers a refused caller with a
// denial, audited with the decision, and an allowed caller with the
// read's own error.
func TestRefusedGetLearnsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	populate(t, opts, 1)
	sels := []secret.Selector{{Version: -1}, {Version: 1, Stage: secret.StageCurrent}}

	refusing := opts
	refusing.Authorizer = denyAll{}
	l := open(t, refusing)
	for _, sel := range sels {
		if _, err := l.Get(ctx, "app/key", sel); !errors.Is(err, secret.ErrPermissionDenied) {
			t.Errorf("refused Get(%+v): %v, want a denial", sel, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	denied := 0
	for _, e := range entries(t, opts) {
		if e.Action == core.ActionGet && e.Outcome == audit.OutcomeDenied && e.Decision != nil && e.Decision.Revision == "sha256:test" {
			denied++
		}
	}
	if denied != len(sels) {
		t.Errorf("%d denied gets audited with the policy's decision, want %d", denied, len(sels))
	}

	l = open(t, opts)
	defer l.Close()
	for _, sel := range sels {
		if _, err := l.Get(ctx, "app/key", sel); !errors.Is(err, secret.ErrInvalidArgument) || strings.Contains(err.Error(), "authorize") {
			t.Errorf("allowed Get(%+v): %v, want the invalid selector", sel, err)
		}
	}
}
