package fpindex_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/secret"
)

const (
	oldValue = "CANARY-old-value-1xQ"
	newValue = "CANARY-new-value-22Zk"
	weak     = "hunter2"
)

func newStore(t *testing.T) *core.Local {
	t.Helper()
	ctx := context.Background()
	opts := core.Options{Dir: filepath.Join(t.TempDir(), "store"), Actor: "alice", AuditSync: audit.SyncWrite}
	if _, err := core.Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	l, err := core.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for _, v := range []string{oldValue, newValue} {
		if _, err := l.Put(ctx, "prod/db/password", secret.NewValue([]byte(v)), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Put(ctx, "prod/weak", secret.NewValue([]byte(weak)), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestExportAndLookup exports a real store's index in the local form and
// looks values up in it: managed values match with their stages, others
// and near-misses do not, weak values are withheld, and the file holds no
// value and no length.
func TestExportAndLookup(t *testing.T) {
	t.Parallel()
	l := newStore(t)
	var buf bytes.Buffer
	n, err := l.ExportFingerprints(context.Background(), &buf)
	if err != nil || n != 2 {
		t.Fatalf("export: %d entries, %v", n, err)
	}
	if strings.Contains(buf.String(), "CANARY") || strings.Contains(buf.String(), `"length"`) {
		t.Fatal("the exported index contains a value or a length")
	}
	ix, err := fpindex.Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	m := ix.Lookup([]byte(oldValue))
	if len(m) != 1 || m[0].Path != "prod/db/password" || m[0].Version != 1 || len(m[0].Stages) != 1 || m[0].Stages[0] != secret.StagePrevious {
		t.Fatalf("lookup of the previous value: %+v", m)
	}
	if m := ix.Lookup([]byte(newValue)); len(m) != 1 || m[0].Stages[0] != secret.StageCurrent {
		t.Fatalf("lookup of the current value: %+v", m)
	}
	for _, miss := range []string{"CANARY-new-value-22Zj", "canary-new-value-22zk", newValue[1:], weak, ""} {
		if m := ix.Lookup([]byte(miss)); len(m) != 0 {
			t.Fatalf("%q matched %+v", miss, m)
		}
	}
	if ix.Len() != 2 || ix.Withheld() != 1 || !ix.Local() || !slices.Equal(ix.Lengths(), []int{len(oldValue), len(newValue)}) {
		t.Fatalf("index of %d, %d withheld, lengths %v", ix.Len(), ix.Withheld(), ix.Lengths())
	}
}

// TestShareableExport: the shareable form holds the detection key and
// 24-bit prefixes only — no full fingerprint, no path, no length — its
// candidates cannot be confirmed without the store, and the store confirms
// them.
func TestShareableExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := newStore(t)
	var buf bytes.Buffer
	f, err := l.ExportFingerprintPrefixes(ctx, "prod/", &buf)
	if err != nil || f.Exported != 2 || f.Withheld != 1 || f.DetectionKey != nil {
		t.Fatalf("export: %+v, %v", f, err)
	}
	v, err := l.Get(ctx, "prod/db/password", secret.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	full := v.Info.Fingerprint
	for _, leak := range []string{"CANARY", full, full[:8], "prod/db", `"length"`, `"entries"`, `"version"`} {
		if strings.Contains(buf.String(), leak) {
			t.Errorf("the shareable index holds %q", leak)
		}
	}
	if !strings.Contains(buf.String(), `"`+full[:6]+`"`) {
		t.Errorf("the shareable index lacks the 24-bit prefix %s", full[:6])
	}
	ix, err := fpindex.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var fp [32]byte
	if ix.Local() || !ix.Candidate(&fp, []byte(newValue)) || ix.Candidate(&fp, []byte("CANARY-new-value-22Zj")) {
		t.Fatal("the shareable index does not make the current value (only) a candidate")
	}
	if m := ix.Lookup([]byte(newValue)); m != nil {
		t.Errorf("the shareable index names versions: %+v", m)
	}
	if _, err := ix.ConfirmFingerprints(ctx, []string{full}); !errors.Is(err, secret.ErrPrecondition) {
		t.Errorf("the shareable index confirmed its own candidate: %v", err)
	}
	conf, err := l.ConfirmFingerprints(ctx, []string{full, strings.Repeat("0", 64)})
	if err != nil || len(conf.Matches) != 1 || len(conf.Matches[full]) != 1 || conf.StoreID != ix.StoreID() {
		t.Errorf("the store's confirmation: %+v, %v", conf, err)
	}
	// Another prefix exports nothing.
	f, err = l.ExportFingerprintPrefixes(ctx, "dev/", &buf)
	if err != nil || f.Exported != 0 || f.Withheld != 0 {
		t.Errorf("export of dev/: %+v, %v", f, err)
	}
}

func TestEstimateBits(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{
		"":                                 false,
		"hunter2":                          false, // short
		"passwordpassword":                 false, // one class: 16 × 4.7 = 75, but period 8
		"Password1Password1":               false, // period 9: 9 × 5.95 = 54
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": false,
		"1234567890123456":                 false, // period 10
		"8402751937461029":                 false, // digits: 16 × 3.32 = 53
		"correcthorsebatterystaple":        true,  // 25 × 4.7 = 118: the estimate cannot see words
		"Zq7xk2PeRuTmWv9s":                 true,  // generated, 16 of 62: 95
		"3f9a0c2e7b1d4a6f":                 true,  // 16 hex: 16 × 5.17 = 83
		"Qx7vK2mP9wL4nR8tZ3yBQx7vK2mP9wL4": true,  // not periodic: 32 × 5.95
	} {
		if got := fpindex.Exportable([]byte(v)); got != want {
			t.Errorf("Exportable(%q) = %v (%.0f bits), want %v", v, got, fpindex.EstimateBits([]byte(v)), want)
		}
	}
}

func TestReadRejectsBadFiles(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("A", 43) + "=" // 32 zero bytes, base64
	fp := strings.Repeat("ab", 32)
	head := `{"format":2,"detection_key":"` + key + `","lengths":[20],`
	for name, tc := range map[string]struct {
		in   string
		want error
		msg  string
	}{
		"empty":              {"", secret.ErrInvalidArgument, ""},
		"not json":           {"hello", secret.ErrInvalidArgument, ""},
		"version 1":          {`{"format":1,"detection_key":"` + key + `","entries":[{"fingerprint":"` + fp + `","path":"a","version":1,"state":"active","length":3}]}`, secret.ErrInvalidArgument, "no longer read"},
		"version 3":          {`{"format":3}`, secret.ErrInvalidArgument, "format 3"},
		"unknown field":      {`{"format":2,"extra":1}`, secret.ErrInvalidArgument, ""},
		"short key":          {`{"format":2,"detection_key":"AAAA"}`, secret.ErrInvalidArgument, ""},
		"bad fp":             {head + `"entries":[{"fingerprint":"zz","path":"a","version":1,"state":"active"}]}`, secret.ErrInvalidArgument, ""},
		"upper fp":           {head + `"entries":[{"fingerprint":"` + strings.ToUpper(fp) + `","path":"a","version":1,"state":"active"}]}`, secret.ErrInvalidArgument, ""},
		"bad path":           {head + `"entries":[{"fingerprint":"` + fp + `","path":"../x","version":1,"state":"active"}]}`, secret.ErrInvalidPath, ""},
		"bad version":        {head + `"entries":[{"fingerprint":"` + fp + `","path":"a","version":0,"state":"active"}]}`, secret.ErrInvalidArgument, ""},
		"entries, no length": {`{"format":2,"detection_key":"` + key + `","entries":[{"fingerprint":"` + fp + `","path":"a","version":1,"state":"active"}]}`, secret.ErrInvalidArgument, ""},
		"huge length":        {`{"format":2,"detection_key":"` + key + `","lengths":[99999999]}`, secret.ErrInvalidArgument, ""},
		"short length":       {`{"format":2,"detection_key":"` + key + `","lengths":[3]}`, secret.ErrInvalidArgument, ""},
		"both forms":         {head + `"prefix_bits":24,"prefixes":["abcdef"],"entries":[{"fingerprint":"` + fp + `","path":"a","version":1,"state":"active"}]}`, secret.ErrInvalidArgument, ""},
		"prefixes, no bits":  {head + `"prefixes":["abcdef"]}`, secret.ErrInvalidArgument, ""},
		"too many bits":      {head + `"prefix_bits":32,"prefixes":["abcdef01"]}`, secret.ErrInvalidArgument, ""},
		"odd bits":           {head + `"prefix_bits":18,"prefixes":["abcd"]}`, secret.ErrInvalidArgument, ""},
		"short prefix":       {head + `"prefix_bits":24,"prefixes":["abcd"]}`, secret.ErrInvalidArgument, ""},
		"bad prefix":         {head + `"prefix_bits":24,"prefixes":["abcdeg"]}`, secret.ErrInvalidArgument, ""},
		"upper prefix":       {head + `"prefix_bits":24,"prefixes":["ABCDEF"]}`, secret.ErrInvalidArgument, ""},
		"bad scope":          {head + `"prefix":"../"}`, secret.ErrInvalidPath, ""},
		"negative count":     {head + `"withheld":-1}`, secret.ErrInvalidArgument, ""},
		"wrong type":         {`{"format":"2"}`, secret.ErrInvalidArgument, ""},
	} {
		_, err := fpindex.Read(strings.NewReader(tc.in))
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), fp) {
			t.Errorf("%s: the error quotes the file", name)
		}
	}
	for name, in := range map[string]string{
		"20 bits": head + `"prefix_bits":20,"prefixes":["abcde"]}`,
		"16 bits": head + `"prefix_bits":16,"prefixes":["abcd"]}`,
		"empty":   `{"format":2,"detection_key":"` + key + `"}`,
	} {
		if _, err := fpindex.Read(strings.NewReader(in)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzRead(f *testing.F) {
	key := strings.Repeat("A", 43) + "="
	f.Add([]byte(`{"format":2,"detection_key":"` + key + `","lengths":[20,32],"prefix_bits":24,"prefixes":["abcdef"]}`))
	f.Add([]byte(`{"format":2,"detection_key":"` + key + `","lengths":[20],"prefix_bits":20,"prefixes":["abcde"]}`))
	f.Add([]byte(`{"format":2,"detection_key":"` + key + `","lengths":[16],"entries":[{"fingerprint":"` + strings.Repeat("ab", 32) + `","path":"a","version":1,"state":"active"}]}`))
	f.Add([]byte(`{"format":2,"store_id":"s1","created_at":"2026-01-02T03:04:05+01:00","prefix":"app/","detection_key":"` + key + `","lengths":[16,40],"exported":2,"withheld":3,"entries":[{"fingerprint":"` + strings.Repeat("cd", 32) + `","path":"app/a","version":2,"stages":["current","pending"],"state":"active"},{"fingerprint":"` + strings.Repeat("cd", 32) + `","path":"app/b","version":1,"state":"destroyed"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ix, err := fpindex.Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		// Round trip: what Read accepts, Write re-encodes to a file Read
		// accepts as the same index.
		var f1 fpindex.File
		if err := json.Unmarshal(b, &f1); err != nil {
			t.Fatalf("Read accepted what does not decode as a File: %v", err)
		}
		var out bytes.Buffer
		if err := fpindex.Write(&out, f1); err != nil {
			t.Fatal(err)
		}
		ix2, err := fpindex.Read(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatalf("Read rejects Write's encoding of what it accepted: %v\n%s", err, out.Bytes())
		}
		var f2 fpindex.File
		if err := json.Unmarshal(out.Bytes(), &f2); err != nil {
			t.Fatal(err)
		}
		if a, b := normalFile(f1), normalFile(f2); !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed the file:\n%+v\n%+v", a, b)
		}
		if ix.Len() != ix2.Len() || ix.Withheld() != ix2.Withheld() || ix.StoreID() != ix2.StoreID() ||
			ix.Local() != ix2.Local() || !slices.Equal(ix.Lengths(), ix2.Lengths()) {
			t.Fatalf("round trip changed the index: %d %d %q %v %v, then %d %d %q %v %v",
				ix.Len(), ix.Withheld(), ix.StoreID(), ix.Local(), ix.Lengths(),
				ix2.Len(), ix2.Withheld(), ix2.StoreID(), ix2.Local(), ix2.Lengths())
		}
		var fp, fp2 [32]byte
		for _, v := range []string{"0123456789abcdefghij", "x", oldValue, weak} {
			if c1, c2 := ix.Candidate(&fp, []byte(v)), ix2.Candidate(&fp2, []byte(v)); c1 != c2 || fp != fp2 {
				t.Fatalf("Candidate(%q) = %v, then %v after the round trip", v, c1, c2)
			}
			if !reflect.DeepEqual(ix.Lookup([]byte(v)), ix2.Lookup([]byte(v))) {
				t.Fatalf("Lookup(%q) changed by the round trip", v)
			}
		}
		if ix.Local() {
			var fps []string
			for _, e := range f1.Entries {
				fps = append(fps, e.Fingerprint)
			}
			c1, err1 := ix.ConfirmFingerprints(context.Background(), fps)
			c2, err2 := ix2.ConfirmFingerprints(context.Background(), fps)
			if err1 != nil || err2 != nil || !reflect.DeepEqual(c1, c2) || len(fps) > 0 && len(c1.Matches) == 0 {
				t.Fatalf("confirmation changed by the round trip: %+v %v, then %+v %v", c1, err1, c2, err2)
			}
		}
	})
}

// normalFile makes two decodings of one file comparable: JSON does not
// tell a missing list from an empty one, and a time's location is a
// pointer.
func normalFile(f fpindex.File) fpindex.File {
	f.CreatedAt = f.CreatedAt.UTC()
	if len(f.Lengths) == 0 {
		f.Lengths = nil
	}
	if len(f.Prefixes) == 0 {
		f.Prefixes = nil
	}
	if len(f.DetectionKey) == 0 {
		f.DetectionKey = nil
	}
	if len(f.Entries) == 0 {
		f.Entries = nil
	}
	f.Entries = slices.Clone(f.Entries)
	for i := range f.Entries {
		if len(f.Entries[i].Stages) == 0 {
			f.Entries[i].Stages = nil
		}
	}
	return f
}
