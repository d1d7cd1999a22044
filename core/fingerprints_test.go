package core_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/secret"
)

// carolPolicy lets carol list the whole store and read team-a's secrets.
const carolPolicy = `package passman.authz

allow if {
	input.subject.id == "carol"
	input.action == "list"
	object.get(input, "path", "") == ""
}

allow if {
	input.subject.id == "carol"
	input.action in {"read", "list"}
	startswith(input.path, "team-a/")
}
`

// TestFingerprintsAnswerOnlyReadable: a lookup, a confirmation and an
// export as carol name team-a's secret and never team-b's, though carol
// may list the whole store and holds team-b's fingerprint.
func TestFingerprintsAnswerOnlyReadable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	opts.PolicyDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(opts.PolicyDir, "carol.rego"), []byte(carolPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	alice := open(t, opts)
	prints := map[string]string{}
	for p, v := range map[string]string{"team-a/db": "teamA-Qx7vK2mP9wL4nR8tZ3yB", "team-b/db": "teamB-Lm3nB8vC1xZ6qW9eR4tY", "team-a/pin": "4711"} {
		info, err := alice.Put(ctx, p, secret.NewValue([]byte(v)), secret.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		prints[p] = info.Fingerprint
	}
	if err := alice.Close(); err != nil {
		t.Fatal(err)
	}
	opts.Actor = "carol"
	carol := open(t, opts)
	defer carol.Close()
	a, b := prints["team-a/db"], prints["team-b/db"]

	if m, err := carol.LookupFingerprint(ctx, b); err != nil || len(m) != 0 {
		t.Errorf("carol's lookup of team-b's fingerprint: %+v, %v", m, err)
	}
	if m, err := carol.LookupFingerprint(ctx, a); err != nil || len(m) != 1 || m[0].Path != "team-a/db" {
		t.Errorf("carol's lookup of team-a's fingerprint: %+v, %v", m, err)
	}
	c, err := carol.ConfirmFingerprints(ctx, []string{a, b, a})
	if err != nil || len(c.Matches) != 1 || len(c.Matches[a]) != 1 {
		t.Errorf("carol's confirmation: %+v, %v", c, err)
	}
	for name, fps := range map[string][]string{
		"upper case": {strings.ToUpper(a)},
		"short":      {a[:62]},
		"too many":   make([]string, fpindex.MaxConfirm+1),
	} {
		if _, err := carol.ConfirmFingerprints(ctx, fps); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("confirmation, %s: %v", name, err)
		}
	}

	var buf bytes.Buffer
	if _, err := carol.ExportFingerprints(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	ix, err := fpindex.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 1 || ix.Withheld() != 1 || ix.Lookup([]byte("teamB-Lm3nB8vC1xZ6qW9eR4tY")) != nil || len(ix.Lookup([]byte("teamA-Qx7vK2mP9wL4nR8tZ3yB"))) != 1 {
		t.Errorf("carol's local index: %d entries, %d withheld", ix.Len(), ix.Withheld())
	}
	if _, err := carol.ExportFingerprintPrefixes(ctx, "team-b/", &buf); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Errorf("carol's export of team-b/: %v", err)
	}

	// Audit: lookups record a fingerprint only when it matched a readable
	// version; confirmations never.
	if err := carol.Close(); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries(t, opts) {
		if e.Actor != "carol" {
			continue
		}
		switch e.Action {
		case core.ActionLookup:
			if e.Fingerprint == b || e.Fingerprint != "" && e.Fingerprint != a {
				t.Errorf("lookup entry %+v", e)
			}
		case core.ActionFingerprintConfirm:
			if e.Fingerprint != "" {
				t.Errorf("confirmation entry with a fingerprint: %+v", e)
			}
		}
	}
}
