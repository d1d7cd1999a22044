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
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/scanner"
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
		if _, err := e.Local.UpdateMetadata(ctx, p, secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: secret.GeneratedConnection}}); err != nil {
			t.Fatal(err)
		}
	}
	r := remoteRunner(t, e)

	if out := r.must(clibase.ExitOK, "", "rotate", "app/db").stdout; !strings.Contains(out, "app/db: rotated v1 -> v2") {
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
	r.must(clibase.ExitNotFound, "", "rotate", "app/missing")
	if inv := r.run("", map[string]string{envToken: e.Tokens[servertest.Reader]}, "rotate", "app/db"); inv.code == clibase.ExitOK {
		t.Errorf("rotate as reader: %+v", inv)
	}

	// The root token may see the scheduler (admin): it has not run here.
	var status struct {
		Scheduler *struct{ Runs []json.RawMessage }
		Secrets   []rotation.Entry
	}
	if err := json.Unmarshal([]byte(r.must(clibase.ExitOK, "", "status", "app/", "-o", "json").stdout), &status); err != nil || len(status.Secrets) != 2 || status.Scheduler == nil || len(status.Scheduler.Runs) != 0 {
		t.Errorf("status: %+v, %v", status, err)
	}
	if out := r.must(clibase.ExitOK, "", "rotate", "--due").stdout; !strings.Contains(out, "0 due") {
		t.Errorf("rotate --due: %q", out)
	}

	// The initial values are too weak to export; the rotated one is not.
	file := filepath.Join(t.TempDir(), "fp.json")
	if out := r.must(clibase.ExitOK, "", "fingerprints", "export", "--file", file).stdout; !strings.Contains(out, "exported 1 fingerprints") || !strings.Contains(out, "left out 2 too weak") {
		t.Errorf("export: %q", out)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ix, err := fpindex.Read(f)
	if err != nil || ix.Len() != 1 || ix.Withheld() != 2 || ix.Local() {
		t.Errorf("exported index: %v", err)
	}
	// A reader may export what it may read, and only that.
	reader := map[string]string{envToken: e.Tokens[servertest.Reader]}
	if inv := r.run("", reader, "fingerprints", "export", "--file", file); inv.code == clibase.ExitOK {
		t.Errorf("export of the whole store as reader: %+v", inv)
	}
	if inv := r.run("", reader, "fingerprints", "export", "--prefix", "app/", "--file", file); inv.code != clibase.ExitOK || !strings.Contains(inv.stdout, "exported 1 fingerprints") {
		t.Errorf("export of app/ as reader: %+v", inv)
	}
}

// TestRemoteScanRespond: scan --managed --respond with a server address
// set recognises a managed secret by the server's index and has the server
// rotate it, as the token's identity, with its own policy; the findings
// say what was done exactly as a local scan's do.
func TestRemoteScanRespond(t *testing.T) {
	e := servertest.New(t, servertest.Options{})
	ctx := context.Background()
	const planted = "Vx8qL3mR7tN2wK9pZ4cJ6hB1"
	if _, err := e.Local.Put(ctx, "app/db", secret.NewValue([]byte(planted)), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Local.UpdateMetadata(ctx, "app/db", secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: secret.GeneratedConnection}}); err != nil {
		t.Fatal(err)
	}
	// The same value, unrotatable, under another path: its response fails.
	if _, err := e.Local.Put(ctx, "app/plain", secret.NewValue([]byte("Hq5wY2nD8sG4kT7vM3xF9bR6")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.env"), []byte("DB_PASSWORD="+planted+"\nDB_REPLICA_PASSWORD="+planted+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := remoteRunner(t, e)

	out := r.must(clibase.ExitFailure, "", "scan", "dir", dir, "--managed", "--respond").stdout
	for _, want := range []string{"app.env:1:", "app.env:2:", "[managed: app/db v1 (current)]", "  -> rotated to v2\n", "  -> revoked v1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("scan --respond output lacks %q:\n%s", want, out)
		}
	}
	// Both findings are the one leaked version: one rotation, reported on each.
	if n := strings.Count(out, "  -> rotated to v2\n"); n != 2 {
		t.Errorf("%d findings say rotated, want 2:\n%s", n, out)
	}
	s, err := e.Local.Describe(ctx, "app/db")
	if err != nil || s.CurrentVersion != 2 || s.Metadata.RotationStatus == nil || s.Metadata.RotationStatus.Trigger != "leak: app.env:1; policy: v1 is the current value of app/db" {
		t.Fatalf("after the response: %+v, %v", s, err)
	}
	stages := map[int]string{}
	err = audit.Read(ctx, filepath.Join(e.Store.Dir, core.AuditFile), audit.Filter{Path: "app/db", Actor: "root-user", Outcome: audit.OutcomeSuccess}, func(en audit.Entry) error {
		stages[en.Version] += en.Action + " "
		return nil
	})
	if err != nil || !strings.Contains(stages[2], core.ActionStage) {
		t.Errorf("the rotation is not on the audit log as root-user: %v, %v", stages, err)
	}

	// A second scan of the same leak rotates nothing; the json report
	// carries the response too.
	var findings []scanner.Finding
	inv := r.run("", nil, "scan", "dir", dir, "--managed", "--respond", "-o", "json")
	if err := json.Unmarshal([]byte(inv.stdout), &findings); err != nil || inv.code != clibase.ExitFailure || len(findings) != 2 {
		t.Fatalf("second scan: %+v, %v", inv, err)
	}
	for _, f := range findings {
		if f.Managed == nil || f.Managed.Path != "app/db" || len(f.Response) != 1 || !strings.HasPrefix(f.Response[0], "notify: v1 of app/db leaked") {
			t.Errorf("second scan finding: %+v", f)
		}
	}
	if v, err := e.Local.Get(ctx, "app/db", secret.Selector{}); err != nil || v.Info.Version != 2 {
		t.Errorf("after the second scan: v%d, %v", v.Info.Version, err)
	}

	// A failed response is reported on its finding and fails the scan.
	if err := os.WriteFile(filepath.Join(dir, "plain.env"), []byte("TOKEN=Hq5wY2nD8sG4kT7vM3xF9bR6\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inv = r.run("", nil, "scan", "dir", dir, "--managed", "--respond")
	if inv.code != exitScanError || !strings.Contains(inv.stdout, "  -> rotation failed: ") || !strings.Contains(inv.stderr, "no rotation configured") {
		t.Errorf("scan with an unrotatable leak: %+v", inv)
	}
	// The index is the server's, and exporting it is an admin action.
	if inv := r.run("", map[string]string{envToken: e.Tokens[servertest.Reader]}, "scan", "dir", dir, "--managed"); inv.code != exitScanError || !strings.Contains(inv.stderr, "permission denied") {
		t.Errorf("scan --managed as reader: %+v", inv)
	}

	secrets := []string{planted, "Hq5wY2nD8sG4kT7vM3xF9bR6"}
	for _, tok := range e.Tokens {
		secrets = append(secrets, tok)
	}
	auditLog, err := os.ReadFile(filepath.Join(e.Store.Dir, core.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, sv := range secrets {
		for _, inv := range r.log {
			if strings.Contains(inv.stdout+inv.stderr, sv) {
				t.Errorf("passman %s printed a value or token", strings.Join(inv.args, " "))
			}
		}
		if strings.Contains(string(e.Log.Bytes()), sv) || strings.Contains(string(auditLog), sv) {
			t.Error("the server log or audit log holds a value or token")
		}
	}
}
