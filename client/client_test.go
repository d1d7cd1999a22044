package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server/servertest"
)

func newClient(t *testing.T, e *servertest.Env, token string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Addr: e.URL, Token: token, CACertFile: e.CAFile, UserAgent: "passman-test"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func wantErr(t *testing.T, what string, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: %v, want %v", what, err, sentinel)
	}
}

// TestRoundTrip drives every Service method through the client against a
// real server over TLS, compares answers with the in-process core, and
// checks that errors keep their sentinel across the wire.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	c := newClient(t, e, e.Tokens[servertest.Root])
	ctx := context.Background()
	owner := "team-a"

	v1 := must[secret.VersionInfo](t, "put v1")(c.Put(ctx, "app/a", secret.NewValue([]byte("one")), secret.PutOptions{Metadata: &secret.MetadataUpdate{Owner: &owner}}))
	if v1.Version != 1 || v1.Fingerprint == "" || !v1.HasStage(secret.StageCurrent) {
		t.Fatalf("put v1: %+v", v1)
	}
	zero, one := 0, 1
	_, err := c.Put(ctx, "app/a", secret.NewValue([]byte("x")), secret.PutOptions{CAS: &zero})
	wantErr(t, "put with a stale CAS", err, secret.ErrConflict)
	if secret.Class(err) != "conflict" {
		t.Errorf("class %q", secret.Class(err))
	}
	must[secret.VersionInfo](t, "put v2")(c.Put(ctx, "app/a", secret.NewValue([]byte("two")), secret.PutOptions{CAS: &one}))
	v3 := must[secret.VersionInfo](t, "put pending")(c.Put(ctx, "app/a", secret.NewValue([]byte("three")), secret.PutOptions{Stage: secret.StagePending}))
	if !v3.HasStage(secret.StagePending) {
		t.Errorf("pending put: %+v", v3)
	}
	for sel, want := range map[secret.Selector]string{{}: "two", {Version: 1}: "one", {Stage: secret.StagePending}: "three"} {
		got := must[secret.Versioned](t, "get "+sel.String())(c.Get(ctx, "app/a", sel))
		if string(got.Value.Reveal()) != want || got.Path != "app/a" {
			t.Errorf("get %s: %q at %s", sel, got.Value.Reveal(), got.Path)
		}
	}
	seed := must[secret.VersionInfo](t, "put b")(c.Put(ctx, "app/b", secret.NewValue([]byte("b")), secret.PutOptions{}))

	// Reads answer as the core answers.
	desc := must[secret.Secret](t, "describe")(c.Describe(ctx, "app/a"))
	if diff := cmp.Diff(must[secret.Secret](t, "local describe")(e.Local.Describe(ctx, "app/a")), desc); diff != "" {
		t.Errorf("describe differs from the core's (-core +client):\n%s", diff)
	}
	page := must[secret.ListPage](t, "list")(c.List(ctx, secret.ListOptions{Prefix: "app/", Limit: 1, WithMetadata: true}))
	if len(page.Entries) != 1 || page.Next != "app/a" || page.Entries[0].Metadata == nil || page.Entries[0].Metadata.Owner != owner {
		t.Errorf("list page 1: %+v", page)
	}
	page2 := must[secret.ListPage](t, "list 2")(c.List(ctx, secret.ListOptions{Prefix: "app/", After: page.Next}))
	if diff := cmp.Diff(must[secret.ListPage](t, "local list")(e.Local.List(ctx, secret.ListOptions{Prefix: "app/", After: "app/a"})), page2); diff != "" || len(page2.Entries) != 1 {
		t.Errorf("list page 2 differs from the core's (-core +client):\n%s", diff)
	}

	rb := must[secret.VersionInfo](t, "rollback")(c.Rollback(ctx, "app/a", 1))
	if rb.Version != 4 {
		t.Errorf("rollback: %+v", rb)
	}
	if err := c.SetStage(ctx, "app/a", secret.StageCurrent, 3); err != nil {
		t.Fatal(err)
	}
	if d := must[secret.Secret](t, "describe")(c.Describe(ctx, "app/a")); d.CurrentVersion != 3 {
		t.Errorf("current after SetStage: %d", d.CurrentVersion)
	}
	if err := c.Delete(ctx, "app/a", []int{1}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, "app/a", secret.Selector{Version: 1})
	wantErr(t, "get a deleted version", err, secret.ErrDeleted)
	if err := c.Undelete(ctx, "app/a", []int{1}); err != nil {
		t.Fatal(err)
	}
	must[secret.Versioned](t, "get undeleted")(c.Get(ctx, "app/a", secret.Selector{Version: 1}))
	if err := c.Destroy(ctx, "app/a", []int{1}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, "app/a", secret.Selector{Version: 1})
	wantErr(t, "get a destroyed version", err, secret.ErrDestroyed)
	desc2 := "described"
	m := must[secret.Metadata](t, "metadata")(c.UpdateMetadata(ctx, "app/a", secret.MetadataUpdate{Description: &desc2, Tags: map[string]string{"env": "dev"}}))
	if m.Description != desc2 || m.Tags["env"] != "dev" || m.Owner != owner {
		t.Errorf("metadata: %+v", m)
	}
	matches := must[[]secret.FingerprintMatch](t, "fingerprint")(c.LookupFingerprint(ctx, seed.Fingerprint))
	if len(matches) != 1 || matches[0].Path != "app/b" {
		t.Errorf("fingerprint matches: %+v", matches)
	}
	if m := must[[]secret.FingerprintMatch](t, "fingerprint")(c.LookupFingerprint(ctx, strings.Repeat("0", 64))); len(m) != 0 {
		t.Errorf("unknown fingerprint matched %+v", m)
	}
	rep := must[audit.Report](t, "verify")(c.VerifyAudit(ctx))
	// The server verifies with its master key, so the checkpoint's
	// signature is checked, and the client sees that it was.
	if !rep.OK || rep.Entries == 0 || rep.Signature != audit.SignatureValid || rep.SignedBy == "" || len(rep.Warnings) > 0 {
		t.Errorf("verify: %+v", rep)
	}
	entries := must[[]audit.Entry](t, "query")(c.QueryAudit(ctx, audit.Filter{Path: "app/a", Action: core.ActionPut}, 2))
	if len(entries) != 2 || entries[0].Actor != "root-user" || entries[1].Details["subject_kind"] != "token" {
		t.Errorf("query: %+v", entries)
	}
	if err := c.Purge(ctx, "app/a"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, "app/a", secret.Selector{})
	wantErr(t, "get a purged secret", err, secret.ErrNotFound)
	_, err = c.Describe(ctx, "app/a")
	wantErr(t, "describe a purged secret", err, secret.ErrNotFound)

	// Errors of every origin keep their sentinel and class.
	_, err = c.Put(ctx, "app/../x", secret.NewValue(nil), secret.PutOptions{})
	wantErr(t, "traversing path", err, secret.ErrInvalidPath)
	_, err = c.List(ctx, secret.ListOptions{Prefix: "/x"})
	wantErr(t, "bad prefix", err, secret.ErrInvalidPath)
	_, err = c.Put(ctx, "app/big", secret.NewValue(make([]byte, secret.MaxValueSize+1)), secret.PutOptions{})
	wantErr(t, "too large", err, secret.ErrTooLarge)
	err = c.SetStage(ctx, "app/b", "bogus", 1)
	wantErr(t, "bad stage", err, secret.ErrInvalidArgument)
	nobody := newClient(t, e, e.Tokens[servertest.Nobody])
	_, err = nobody.Put(ctx, "app/b", secret.NewValue([]byte("x")), secret.PutOptions{})
	wantErr(t, "denied write", err, secret.ErrPermissionDenied)
	if secret.Class(err) != "permission_denied" {
		t.Errorf("denied write class %q", secret.Class(err))
	}
	_, err = nobody.Get(ctx, "app/b", secret.Selector{})
	wantErr(t, "denied read", err, secret.ErrNotFound)
	for kind, tok := range map[string]string{"none": "", "revoked": e.Tokens[servertest.Revoked], "expired": e.Tokens[servertest.Expired]} {
		_, err = newClient(t, e, tok).List(ctx, secret.ListOptions{})
		wantErr(t, kind+" token", err, secret.ErrUnauthenticated)
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Status != 401 || ae.RequestID == "" {
			t.Errorf("%s token: %#v", kind, err)
		}
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	ctx := context.Background()
	root := newClient(t, e, e.Tokens[servertest.Root])
	token, info, err := root.CreateToken(ctx, secret.TokenRequest{Identity: "ci", Claims: map[string]string{"role": "reader"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, core.TokenPrefix) || info.Identity != "ci" || info.CreatedBy != "root-user" || info.ExpiresAt.Sub(info.CreatedAt) != time.Hour {
		t.Fatalf("create: %+v", info)
	}
	ci := newClient(t, e, token)
	self, err := ci.LookupSelf(ctx)
	if err != nil || self.Accessor != info.Accessor || self.Claims["role"] != "reader" {
		t.Fatalf("lookup-self: %+v, %v", self, err)
	}
	// The new token acts as a reader: it may list app/, not create tokens.
	if _, err := ci.List(ctx, secret.ListOptions{Prefix: "app/"}); err != nil {
		t.Errorf("reader list: %v", err)
	}
	_, _, err = ci.CreateToken(ctx, secret.TokenRequest{Identity: "x"})
	wantErr(t, "reader creating a token", err, secret.ErrPermissionDenied)
	list, err := root.ListTokens(ctx)
	if err != nil || len(list) != 6 {
		t.Fatalf("list: %d tokens, %v", len(list), err)
	}
	if err := root.RevokeToken(ctx, info.Accessor); err != nil {
		t.Fatal(err)
	}
	_, err = ci.LookupSelf(ctx)
	wantErr(t, "revoked token", err, secret.ErrUnauthenticated)
	err = root.RevokeToken(ctx, "0123456789abcdef")
	wantErr(t, "revoke unknown", err, secret.ErrNotFound)
	_, _, err = root.CreateToken(ctx, secret.TokenRequest{Identity: "has space"})
	wantErr(t, "bad identity", err, secret.ErrInvalidArgument)
	if err := root.Health(ctx); err != nil {
		t.Error(err)
	}
	if err := newClient(t, e, "").Ready(ctx); err != nil {
		t.Errorf("ready without a token: %v", err)
	}
}

// TestVerifyTampered: a broken audit chain comes back as the report that
// locates it plus an error wrapping ErrTampered, as from the core.
func TestVerifyTampered(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	name := filepath.Join(e.Store.Dir, core.AuditFile)
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(b), "\n", 3)
	lines[1] = strings.Replace(lines[1], `"token.create"`, `"token.CREATE"`, 1)
	if err := os.WriteFile(name, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := newClient(t, e, e.Tokens[servertest.Root]).VerifyAudit(context.Background())
	wantErr(t, "verify a tampered log", err, secret.ErrTampered)
	if rep.OK || rep.Broken == nil || rep.Broken.Seq != 2 {
		t.Errorf("report: %+v", rep)
	}
}
