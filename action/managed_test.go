package action

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/internal/oidctest"
	"github.com/passman-dev/passman/secret"
)

// TestScanManagedRespond: with managed: true the job logs in with its ID
// token and the scan recognises the organisation's own secret, which no
// rule matches; with respond: true the server rotates it there and then,
// and the comment and the outputs say so. The value shows nowhere.
func TestScanManagedRespond(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	iss := oidctest.New(t)
	ps := newPassmanServer(t, iss)
	const managed = "Qm7vT2xLp9RkW4nZc8YbH3sJd6FgA1eU"
	ps.put(t, "ci/db/password", managed)
	if _, err := ps.Local.UpdateMetadata(ctx, "ci/db/password", secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: secret.GeneratedConnection}}); err != nil {
		t.Fatal(err)
	}
	o := newOrigin(t)
	work := filepath.Join(t.TempDir(), "w")
	git(t, ".", "clone", "-q", "--branch", "feature", o.bare, work)
	commit(t, work, "app/settings.ini", "[db]\nhost=db.internal\nsecret_value="+managed+"\n", "settings")
	git(t, work, "push", "-q", "origin", "feature")
	o.head = git(t, work, "rev-parse", "HEAD")

	gh := newGitHub(t)
	s := scanStep(t, o.checkout(t, "feature", 0), gh).event("pull_request", prPayload(o, 7, false)).
		input("managed", "true").input("managed-prefix", "ci/").input("respond", "true").input("server", ps.URL).input("ca-cert", ps.CAFile).input("audience", ps.Audience)
	s.vars["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "runtime-token"
	s.vars["ACTIONS_ID_TOKEN_REQUEST_URL"] = idTokenEndpoint(t, iss, "acme/widgets", "runtime-token")
	if code := s.run("run"); code != ExitFailed {
		t.Fatalf("exit %d:\n%s", code, s.out.String())
	}
	outs := fileCommands(t, s.file("GITHUB_OUTPUT"))
	if outs["findings"] != "2" || outs["rotated"] != "true" {
		t.Errorf("outputs %v\n%s", outs, s.out.String())
	}
	log := s.out.String()
	if !strings.Contains(log, "passman-managed secret ci/db/password v1") {
		t.Errorf("log:\n%s", log)
	}
	cs := gh.Comments("acme", "widgets", 7)
	if len(cs) != 1 || !strings.Contains(cs[0].Body, "### Response") || !strings.Contains(cs[0].Body, "rotated") {
		t.Fatalf("comment: %+v", cs)
	}
	cur, err := ps.Local.Get(ctx, "ci/db/password", secret.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	if cur.Info.Version != 2 || string(cur.Value.Reveal()) == managed {
		t.Errorf("not rotated: now v%d", cur.Info.Version)
	}
	noCanary(t, s, managed, cs[0].Body)
	// The step's own token ended with the step.
	tokens, err := ps.Local.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tokens {
		if tk.RevokedAt.IsZero() {
			t.Errorf("token %s (%s) outlived the scan step", tk.Accessor, tk.Identity)
		}
	}
	noCanary(t, s, awsKey)
}
