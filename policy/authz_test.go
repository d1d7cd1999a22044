package policy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/secret"
)

func TestAuthorizeMatrix(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{Dir: "testdata/authz"})

	alice := Subject{ID: "alice", Kind: KindUser} // created the store
	dana := Subject{ID: "dana", Kind: KindUser}   // team db
	ann := Subject{ID: "ann", Kind: KindUser}     // team app
	bob := Subject{ID: "bob", Kind: KindUser}     // no team
	ci := Subject{ID: "ci-reader", Kind: KindToken}
	aliceToken := Subject{ID: "alice", Kind: KindToken}
	gha := func(claims map[string]any) Subject {
		return Subject{ID: "repo:" + claims["repository"].(string), Kind: KindGitHubOIDC, Claims: claims}
	}
	ghMain := gha(map[string]any{"repository": "acme/app", "repository_owner": "acme", "ref": "refs/heads/main"})
	ghFeature := gha(map[string]any{"repository": "acme/app", "ref": "refs/heads/feature"})
	ghFork := gha(map[string]any{"repository": "evil/app", "ref": "refs/heads/main"})
	ghEnv := gha(map[string]any{"repository": "acme/app", "ref": "refs/heads/release", "environment": "production"})
	ghMainEnv := gha(map[string]any{"repository": "acme/app", "ref": "refs/heads/main", "environment": "production"})

	const (
		creator  = "alice created the store and may do everything"
		teamDB   = "dana is in team db, which owns prod/db/"
		teamApp  = "ann is in team app, which owns prod/app/"
		ghRead   = "acme/app at refs/heads/main may read prod/app/"
		ghEnvMsg = "acme/app in environment production may read and rotate prod/app/"
	)
	tests := []struct {
		name    string
		subject Subject
		action  string
		path    string
		allow   bool
		reasons []string
	}{
		{"creator reads", alice, ActionRead, "prod/db/password", true, []string{creator}},
		{"creator admin", alice, ActionAdmin, "", true, []string{creator}},
		{"creator destroys dev", alice, ActionDestroy, "dev/x", true, []string{creator}},
		{"user deny overrides creator", alice, ActionDestroy, "prod/db/password", false, []string{"destroying production secrets is forbidden: prod/db/password"}},
		{"token named like creator", aliceToken, ActionRead, "prod/db/password", false, []string{"no policy allows read on prod/db/password for token alice"}},
		{"team reads own prefix", dana, ActionRead, "prod/db/password", true, []string{teamDB}},
		{"team writes own prefix", dana, ActionWrite, "prod/db/password", true, []string{teamDB}},
		{"team lists own prefix", ann, ActionList, "prod/app/", true, []string{teamApp}},
		{"team may not delete", dana, ActionDelete, "prod/db/password", false, []string{"no policy allows delete on prod/db/password for user dana"}},
		{"team may not destroy", dana, ActionDestroy, "prod/db/password", false, []string{"destroying production secrets is forbidden: prod/db/password"}},
		{"team reads other prefix", dana, ActionRead, "prod/app/api-token", false, []string{"no policy allows read on prod/app/api-token for user dana"}},
		{"stranger", bob, ActionRead, "prod/db/password", false, []string{"no policy allows read on prod/db/password for user bob"}},
		{"stranger lists root", bob, ActionList, "", false, []string{"no policy allows list on (all paths) for user bob"}},
		{"token reads dev without reasons", ci, ActionRead, "dev/app/key", true, []string{}},
		{"token writes dev", ci, ActionWrite, "dev/app/key", false, []string{"no policy allows write on dev/app/key for token ci-reader"}},
		{"oidc main reads", ghMain, ActionRead, "prod/app/api-token", true, []string{ghRead}},
		{"oidc main writes", ghMain, ActionWrite, "prod/app/api-token", false, []string{"no policy allows write on prod/app/api-token for github-oidc repo:acme/app"}},
		{"oidc main other prefix", ghMain, ActionRead, "prod/db/password", false, []string{"no policy allows read on prod/db/password for github-oidc repo:acme/app"}},
		{"oidc feature branch", ghFeature, ActionRead, "prod/app/api-token", false, []string{"no policy allows read on prod/app/api-token for github-oidc repo:acme/app"}},
		{"oidc fork", ghFork, ActionRead, "prod/app/api-token", false, []string{"no policy allows read on prod/app/api-token for github-oidc repo:evil/app"}},
		{"oidc environment rotates", ghEnv, ActionRotate, "prod/app/api-token", true, []string{ghEnvMsg}},
		{"oidc environment deletes", ghEnv, ActionDelete, "prod/app/api-token", false, []string{"no policy allows delete on prod/app/api-token for github-oidc repo:acme/app"}},
		{"oidc two rules", ghMainEnv, ActionRead, "prod/app/api-token", true, []string{ghRead, ghEnvMsg}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := AuthzInput{Subject: tt.subject, Action: tt.action, Path: tt.path, Store: StoreInfo{CreatedBy: "alice"}, Time: testTime}
			got, err := e.Authorize(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			want := Decision{Allow: tt.allow, Reasons: tt.reasons, Revision: e.Revision()}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAuthorizeBundledOnly(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	in := AuthzInput{Subject: Subject{ID: "bob", Kind: KindUser}, Action: ActionWrite, Path: "prod/db/password", Store: StoreInfo{CreatedBy: "alice"}, Time: testTime}
	got, err := e.Authorize(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want := Decision{Reasons: []string{"no policy allows write on prod/db/password for user bob"}, Revision: e.Revision()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decision (-want +got):\n%s", diff)
	}
	// A store without a recorded creator must not make everyone its creator.
	in.Subject.ID, in.Store.CreatedBy = "", ""
	if _, err := e.Authorize(context.Background(), in); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("empty subject id: err = %v, want ErrInvalidArgument", err)
	}
}

func TestAuthorizeInvalidInput(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	base := AuthzInput{Subject: Subject{ID: "alice", Kind: KindUser}, Action: ActionRead, Path: "prod/x", Store: StoreInfo{CreatedBy: "alice"}, Time: testTime}
	tests := []struct {
		name   string
		modify func(*AuthzInput)
		want   string
	}{
		{"unknown action", func(in *AuthzInput) { in.Action = "execute" }, `unknown action "execute"`},
		{"empty action", func(in *AuthzInput) { in.Action = "" }, `unknown action ""`},
		{"unknown kind", func(in *AuthzInput) { in.Subject.Kind = "robot" }, `unknown subject kind "robot"`},
		{"read without path", func(in *AuthzInput) { in.Path = "" }, "action read needs a path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := base
			tt.modify(&in)
			d, err := e.Authorize(context.Background(), in)
			if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidArgument containing %q", err, tt.want)
			}
			if d.Allow || len(d.Reasons) == 0 {
				t.Errorf("decision on error = %+v, want a deny with a reason", d)
			}
		})
	}
}

func TestAuthorizeBadPolicyResult(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"deny not strings":  "package passman.authz\n\ndeny contains {\"msg\": \"no\"} if true\n",
		"conflicting allow": "package passman.authz\n\nallow := true if input.action == \"read\"\n\nallow := false if input.action == \"read\"\n",
	}
	for name, text := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"bad.rego": text})
			e := newEngine(t, Options{Dir: dir})
			in := AuthzInput{Subject: Subject{ID: "alice", Kind: KindUser}, Action: ActionRead, Path: "prod/x", Store: StoreInfo{CreatedBy: "alice"}, Time: testTime}
			d, err := e.Authorize(context.Background(), in)
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("err = %v, want ErrInvalidPolicy", err)
			}
			if d.Allow {
				t.Errorf("a failed evaluation allowed: %+v", d)
			}
		})
	}
}
