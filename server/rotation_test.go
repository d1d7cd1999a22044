package server_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server/servertest"
)

// rotated seeds path with a value and the generated connector.
func rotated(t *testing.T, e *servertest.Env, path string) {
	t.Helper()
	seed(t, e, path, 1)
	if _, err := e.Local.UpdateMetadata(context.Background(), path, secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: secret.GeneratedConnection, Length: 24}}); err != nil {
		t.Fatal(err)
	}
}

// TestRotateOverHTTP: a rotation the server runs really rotates, every step
// audited as the token's identity; a caller the policy does not let write
// changes nothing.
func TestRotateOverHTTP(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	ctx := context.Background()
	rotated(t, e, "app/db")

	// The reader may read app/ but not write: the rotation stops at its
	// first write, and nothing changed.
	if res := send(t, e, "POST", "/v1/rotate/app/db", e.Tokens[servertest.Reader], nil); res.status != 403 || res.class() != "permission_denied" {
		t.Fatalf("rotate as reader: %d %s", res.status, res.body)
	}
	if s, err := e.Local.Describe(ctx, "app/db"); err != nil || s.CurrentVersion != 1 || len(s.Versions) != 1 {
		t.Fatalf("after a denied rotation: %+v, %v", s, err)
	}
	if res := send(t, e, "POST", "/v1/rotate/app/missing", e.Tokens[servertest.Root], nil); res.status != 404 || res.class() != "not_found" {
		t.Errorf("rotate a missing secret: %d %s", res.status, res.body)
	}
	if res := send(t, e, "POST", "/v1/rotate/app/db", e.Tokens[servertest.Root], strings.NewReader(`{"trigger":"leak"}`)); res.status != 400 {
		t.Errorf("rotate with a made-up trigger: %d %s", res.status, res.body)
	}

	res := send(t, e, "POST", "/v1/rotate/app/db", e.Tokens[servertest.Root], nil)
	if res.status != 200 {
		t.Fatalf("rotate: %d %s", res.status, res.body)
	}
	var r rotation.Result
	if err := json.Unmarshal(res.body, &r); err != nil {
		t.Fatal(err)
	}
	if r.State != secret.RotationSucceeded || r.From != 1 || r.To != 2 {
		t.Fatalf("rotate: %+v", r)
	}
	v, err := e.Local.Get(ctx, "app/db", secret.Selector{})
	if err != nil || v.Info.Version != 2 || v.Value.Len() != 24 {
		t.Fatalf("current after rotation: v%d len %d, %v", v.Info.Version, v.Value.Len(), err)
	}
	s, err := e.Local.Describe(ctx, "app/db")
	if err != nil || s.Metadata.RotationStatus == nil || s.Metadata.RotationStatus.Trigger != "manual" {
		t.Fatalf("rotation status: %+v, %v", s.Metadata.RotationStatus, err)
	}

	// Every step is on the audit log as the token's identity.
	actions := auditedActions(t, e, "app/db", "root-user")
	for _, a := range []string{core.ActionDescribe, core.ActionPut, core.ActionMeta, core.ActionStage} {
		if !actions[a] {
			t.Errorf("no %s by root-user on the audit log (have %v)", a, actions)
		}
	}

	// Status and due runs.
	res = send(t, e, "GET", "/v1/rotation-status?prefix=app/", e.Tokens[servertest.Root], nil)
	var entries []rotation.Entry
	if err := json.Unmarshal(res.body, &entries); res.status != 200 || err != nil || len(entries) != 1 || entries[0].Path != "app/db" {
		t.Errorf("rotation status: %d %s", res.status, res.body)
	}
	if res := send(t, e, "GET", "/v1/rotation-status?prefix=../", e.Tokens[servertest.Root], nil); res.status != 400 {
		t.Errorf("rotation status with a bad prefix: %d %s", res.status, res.body)
	}
	if res := send(t, e, "POST", "/v1/rotate-due", e.Tokens[servertest.Root], strings.NewReader(`{"workers":1000}`)); res.status != 400 {
		t.Errorf("rotate-due with 1000 workers: %d %s", res.status, res.body)
	}
	res = send(t, e, "POST", "/v1/rotate-due", e.Tokens[servertest.Root], nil)
	var rep rotation.DueReport
	if err := json.Unmarshal(res.body, &rep); res.status != 200 || err != nil || rep.Due != 0 {
		t.Errorf("rotate-due: %d %s", res.status, res.body)
	}
}

// auditedActions lists the actions that succeeded on path as actor,
// according to e's audit log.
func auditedActions(t *testing.T, e *servertest.Env, path, actor string) map[string]bool {
	t.Helper()
	actions := map[string]bool{}
	err := audit.Read(context.Background(), filepath.Join(e.Store.Dir, core.AuditFile), audit.Filter{Path: path, Actor: actor, Outcome: audit.OutcomeSuccess}, func(en audit.Entry) error {
		actions[en.Action] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return actions
}
