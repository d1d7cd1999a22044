package server_test

import (
	"context"
	"testing"

	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server/servertest"
)

// TestRevokeSelf: a token ends itself without any permission, stops
// working at once, and cannot be used to revoke again; the revocation is
// audited.
func TestRevokeSelf(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := servertest.New(t, servertest.Options{})
	tok, info, err := e.Local.CreateToken(ctx, secret.TokenRequest{Identity: "ci-job"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Options{Addr: e.URL, CACertFile: e.CAFile, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LookupSelf(ctx); err != nil {
		t.Fatalf("lookup-self before: %v", err)
	}
	if got := c.BearerToken(); got != tok {
		t.Fatalf("BearerToken is not the client's token")
	}
	if err := c.RevokeSelf(ctx); err != nil {
		t.Fatalf("revoke-self: %v", err)
	}
	if _, err := c.LookupSelf(ctx); secret.Class(err) != "unauthenticated" {
		t.Fatalf("lookup-self after revoke-self: %v, want unauthenticated", err)
	}
	if err := c.RevokeSelf(ctx); secret.Class(err) != "unauthenticated" {
		t.Fatalf("second revoke-self: %v, want unauthenticated", err)
	}
	infos, err := e.Local.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.Accessor == info.Accessor && i.RevokedAt.IsZero() {
			t.Fatalf("token %s not marked revoked", i.Accessor)
		}
	}
}
