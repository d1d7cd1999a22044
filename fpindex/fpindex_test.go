package fpindex_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/secret"
)

// TestExportAndLookup exports a real store's index and looks values up in
// it: managed values match with their stages, others and near-misses do not,
// and the file holds no value.
func TestExportAndLookup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := core.Options{Dir: filepath.Join(t.TempDir(), "store"), Actor: "alice", AuditSync: audit.SyncWrite}
	if _, err := core.Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	l, err := core.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, v := range []string{"CANARY-old-value-1", "CANARY-new-value-22"} {
		if _, err := l.Put(ctx, "prod/db/password", secret.NewValue([]byte(v)), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	n, err := l.ExportFingerprints(ctx, &buf)
	if err != nil || n != 2 {
		t.Fatalf("export: %d entries, %v", n, err)
	}
	if strings.Contains(buf.String(), "CANARY") {
		t.Fatal("the exported index contains a value")
	}
	ix, err := fpindex.Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	m := ix.Lookup([]byte("CANARY-old-value-1"))
	if len(m) != 1 || m[0].Path != "prod/db/password" || m[0].Version != 1 || len(m[0].Stages) != 1 || m[0].Stages[0] != secret.StagePrevious {
		t.Fatalf("lookup of the previous value: %+v", m)
	}
	if m := ix.Lookup([]byte("CANARY-new-value-22")); len(m) != 1 || m[0].Stages[0] != secret.StageCurrent {
		t.Fatalf("lookup of the current value: %+v", m)
	}
	for _, miss := range []string{"CANARY-new-value-23", "canary-new-value-22", "CANARY-new-value-2", ""} {
		if m := ix.Lookup([]byte(miss)); len(m) != 0 {
			t.Fatalf("%q matched %+v", miss, m)
		}
	}
	if ix.Len() != 2 || !ix.HasLength(18) || ix.HasLength(17) {
		t.Fatalf("index size %d, lengths %v", ix.Len(), ix.Lengths())
	}
}

func TestReadRejectsBadFiles(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("A", 43) + "=" // 32 zero bytes, base64
	fp := strings.Repeat("ab", 32)
	for name, tc := range map[string]struct {
		in   string
		want error
	}{
		"empty":         {"", secret.ErrInvalidArgument},
		"not json":      {"hello", secret.ErrInvalidArgument},
		"unknown field": {`{"format":1,"extra":1}`, secret.ErrInvalidArgument},
		"wrong format":  {`{"format":2,"detection_key":"` + key + `","entries":[]}`, secret.ErrInvalidArgument},
		"short key":     {`{"format":1,"detection_key":"AAAA","entries":[]}`, secret.ErrInvalidArgument},
		"bad fp":        {`{"format":1,"detection_key":"` + key + `","entries":[{"fingerprint":"zz","path":"a","version":1,"state":"active","length":3}]}`, secret.ErrInvalidArgument},
		"bad path":      {`{"format":1,"detection_key":"` + key + `","entries":[{"fingerprint":"` + fp + `","path":"../x","version":1,"state":"active","length":3}]}`, secret.ErrInvalidPath},
		"bad length":    {`{"format":1,"detection_key":"` + key + `","entries":[{"fingerprint":"` + fp + `","path":"a","version":1,"state":"active","length":0}]}`, secret.ErrInvalidArgument},
		"wrong type":    {`{"format":"1"}`, secret.ErrInvalidArgument},
	} {
		if _, err := fpindex.Read(strings.NewReader(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"format":1,"detection_key":"` + strings.Repeat("A", 43) + `=","entries":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ix, err := fpindex.Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		_ = ix.Lookup([]byte("x"))
	})
}
