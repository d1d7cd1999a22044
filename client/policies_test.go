package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server/servertest"
)

// TestPolicies: the client's policy administration agrees with the
// server's store, and a refusal keeps its class and the compiler's
// file:line:col across the wire.
func TestPolicies(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	ctx := context.Background()
	c := newClient(t, e, e.Tokens[servertest.Root])
	const src = "package passman.authz\n\nreasons contains \"never\" if input.action == \"none\"\n"
	m, err := c.PutPolicy(ctx, "extra", src)
	if err != nil || m.Version != 1 || m.Name != "extra" {
		t.Fatalf("put: %+v %v", m, err)
	}
	if got, err := c.GetPolicy(ctx, "extra"); err != nil || got.Source != src || got.SHA256 != m.SHA256 {
		t.Errorf("get: %+v %v", got, err)
	}
	if list, err := c.ListPolicies(ctx); err != nil || len(list) != 1 || list[0].Source != "" {
		t.Errorf("list: %+v %v", list, err)
	}
	_, err = c.PutPolicy(ctx, "bad", "package passman.authz\n\nallow if {\n")
	if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), "store:bad.rego:4:") {
		t.Errorf("put bad: %v", err)
	}
	if _, err := c.PutPolicy(ctx, "../x", src); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := newClient(t, e, e.Tokens[servertest.Reader]).ListPolicies(ctx); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Errorf("reader list: %v", err)
	}
	if err := c.DeletePolicy(ctx, "extra"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetPolicy(ctx, "extra"); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("get deleted: %v", err)
	}
}
