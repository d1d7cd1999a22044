package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server/servertest"
)

// TestCompareValue: the client's compare agrees with the server's, a
// denied path and a missing one fail alike with ErrNotFound, and a bad
// value keeps its class across the wire.
func TestCompareValue(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	ctx := context.Background()
	for _, p := range []string{"app/a", "locked/a"} {
		if _, err := e.Local.Put(ctx, p, secret.NewValue([]byte("one")), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(t, e, e.Tokens[servertest.Reader])
	for v, want := range map[string]bool{"one": true, "onE": false, "one ": false} {
		if got, err := c.CompareValue(ctx, "app/a", []byte(v)); err != nil || got != want {
			t.Errorf("compare %q: %v, %v; want %v", v, got, err, want)
		}
	}
	_, denied := c.CompareValue(ctx, "locked/a", []byte("one"))
	_, missing := c.CompareValue(ctx, "app/none", []byte("one"))
	if !errors.Is(denied, secret.ErrNotFound) || denied.Error() != missing.Error() {
		t.Errorf("denied %v, missing %v: want one not-found answer", denied, missing)
	}
	if _, err := c.CompareValue(ctx, "app/a", nil); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("empty value: %v", err)
	}
	if _, err := c.CompareValue(ctx, "app/../a", []byte("one")); !errors.Is(err, secret.ErrInvalidPath) {
		t.Errorf("bad path: %v", err)
	}
}
