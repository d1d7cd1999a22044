package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server/servertest"
)

// TestRemoteRotate runs rotate, status and fingerprints export against a
// server: the server rotates, as the token's identity.
func TestRemoteRotate(t *testing.T) {
	e := servertest.New(t, servertest.Options{})
	ctx := context.Background()
	for _, p := range []string{"app/db", "app/api"} {
		if _, err := e.Local.Put(ctx, p, secret.NewValue([]byte("initial "+p)), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Local.UpdateMetadata(ctx, p, secret.MetadataUpdate{Rotation: &secret.Rotation{Connector: "generated"}}); err != nil {
			t.Fatal(err)
		}
	}
	r := newRunner(t)
	r.env[envAddr] = e.URL
	r.env[envToken] = e.Tokens[servertest.Root]
	r.env[envCACert] = e.CAFile

	if out := r.must(ExitOK, "", "rotate", "app/db").stdout; !strings.Contains(out, "app/db: rotated v1 -> v2") {
		t.Errorf("rotate: %q", out)
	}
	v, err := e.Local.Get(ctx, "app/db", secret.Selector{})
	if err != nil || v.Info.Version != 2 {
		t.Fatalf("after rotate: v%d, %v", v.Info.Version, err)
	}
	n := 0
	err = audit.Read(ctx, filepath.Join(e.Store.Dir, core.AuditFile), audit.Filter{Path: "app/db", Action: core.ActionStage, Actor: "root-user"}, func(audit.Entry) error { n++; return nil })
	if err != nil || n == 0 {
		t.Errorf("no stage entry by root-user: %d, %v", n, err)
	}
	r.must(ExitNotFound, "", "rotate", "app/missing")
	if inv := r.run("", map[string]string{envToken: e.Tokens[servertest.Reader]}, "rotate", "app/db"); inv.code == ExitOK {
		t.Errorf("rotate as reader: %+v", inv)
	}

	var entries []rotation.Entry
	if err := json.Unmarshal([]byte(r.must(ExitOK, "", "status", "app/", "-o", "json").stdout), &entries); err != nil || len(entries) != 2 {
		t.Errorf("status: %+v, %v", entries, err)
	}
	if out := r.must(ExitOK, "", "rotate", "--due").stdout; !strings.Contains(out, "0 due") {
		t.Errorf("rotate --due: %q", out)
	}

	file := filepath.Join(t.TempDir(), "fp.json")
	r.must(ExitOK, "", "fingerprints", "export", "--file", file)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ix, err := fpindex.Read(f)
	if err != nil || ix.Len() != 3 {
		t.Errorf("exported index: %v, %v", ix, err)
	}
}
