package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/passman-dev/passman/secret"
)

// TestWatchReloadsOnChange edits a watched policy directory: a valid change
// goes live, a broken one is reported and the old decisions stay.
func TestWatchReloadsOnChange(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	file := filepath.Join(dir, "team.rego")
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("package passman.authz\n\nallow if input.subject.id == \"bob\"\n")
	e, err := New(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		rev string
		err error
	}
	reports := make(chan result, 16)
	if err := e.Watch(ctx, func(rev string, err error) { reports <- result{rev, err} }); err != nil {
		t.Fatal(err)
	}
	in := AuthzInput{Subject: Subject{ID: "carol", Kind: "user"}, Action: "read", Path: "a/b"}
	next := func() result {
		t.Helper()
		select {
		case r := <-reports:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no reload reported within 10s of a change")
			return result{}
		}
	}
	if d, _ := e.Authorize(ctx, in); d.Allow {
		t.Fatal("carol allowed before the change")
	}
	before := e.Revision()
	write("package passman.authz\n\nallow if input.subject.id == \"carol\"\n")
	if r := next(); r.err != nil || r.rev == before {
		t.Fatalf("reload after a valid change: %+v", r)
	}
	if d, _ := e.Authorize(ctx, in); !d.Allow {
		t.Fatal("the changed policy is not live")
	}
	live := e.Revision()
	write("package passman.authz\n\nallow if {\n")
	if r := next(); r.err == nil || r.rev != live {
		t.Fatalf("reload after a broken change: %+v", r)
	}
	if d, _ := e.Authorize(ctx, in); !d.Allow {
		t.Fatal("a broken change replaced the live policy")
	}
	if err := (&Engine{}).Watch(ctx, func(string, error) {}); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Fatalf("watching no directory: %v", err)
	}
}
