package backup_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/backup"
	"github.com/passman-dev/passman/secret"
)

var testHeader = backup.Header{StoreID: "0123456789abcdef", CreatedAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Source: "bbolt", KeyIDs: []string{"k1"}, AuditSeq: 7}

// sample is a backup of a 3 MiB database section (several chunks), a KV
// section and an audit section.
func sample(t testing.TB) ([]byte, []byte) {
	t.Helper()
	db := bytes.Repeat([]byte("0123456789abcdef"), 3<<16)
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, testHeader)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := w.Section(backup.KindBoltDB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sec.Write(db); err != nil {
		t.Fatal(err)
	}
	if err := sec.Close(); err != nil {
		t.Fatal(err)
	}
	sec, _ = w.Section(backup.KindKV)
	kv := backup.NewKVWriter(sec)
	for _, k := range []string{"a", "b", "s/x\x00"} {
		if err := kv.Put([]byte(k), []byte("value of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	sec.Close()
	sec, _ = w.Section(backup.KindAudit)
	io.WriteString(sec, "line 1\nline 2\n")
	sec.Close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), db
}

// readAll reads every section of b, returning them by kind.
func readAll(b []byte) (backup.Header, map[backup.Kind][]byte, error) {
	r, err := backup.NewReader(bytes.NewReader(b))
	if err != nil {
		return backup.Header{}, nil, err
	}
	out := map[backup.Kind][]byte{}
	for {
		k, sec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.Header, out, nil
		}
		if err != nil {
			return r.Header, out, err
		}
		d, err := io.ReadAll(sec)
		if err != nil {
			return r.Header, out, err
		}
		out[k] = d
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	b, db := sample(t)
	h, secs, err := readAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.StoreID != testHeader.StoreID || h.AuditSeq != 7 || !h.CreatedAt.Equal(testHeader.CreatedAt) {
		t.Errorf("header = %+v", h)
	}
	if !bytes.Equal(secs[backup.KindBoltDB], db) || string(secs[backup.KindAudit]) != "line 1\nline 2\n" {
		t.Error("sections differ from what was written")
	}
	var keys []string
	if err := backup.ReadKV(bytes.NewReader(secs[backup.KindKV]), func(k, v []byte) error {
		if string(v) != "value of "+string(k) {
			t.Errorf("record %q = %q", k, v)
		}
		keys = append(keys, string(k))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "a,b,s/x\x00" {
		t.Errorf("keys = %q", keys)
	}
}

// TestRefused: every damaged, truncated, foreign or future backup is
// refused with ErrCorrupt and a message that says which.
func TestRefused(t *testing.T) {
	t.Parallel()
	good, _ := sample(t)
	version := bytes.Clone(good)
	binary.BigEndian.PutUint16(version[len(backup.Magic):], 2)
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 1
	tail := bytes.Clone(good)
	tail[len(tail)-1] ^= 1
	hugeHeader := bytes.Clone(good)
	binary.BigEndian.PutUint32(hugeHeader[len(backup.Magic)+2:], 1<<30)
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"empty":          {nil, "not a passman backup"},
		"foreign":        {[]byte("SQLite format 3\x00 and more bytes"), "not a passman backup"},
		"short magic":    {good[:5], "truncated"},
		"future version": {version, "version 2 is not supported"},
		"huge header":    {hugeHeader, "header length"},
		"header only":    {good[:40], "truncated"},
		"half":           {good[:len(good)/2], "truncated"},
		"no checksum":    {good[:len(good)-32], "truncated"},
		"last byte gone": {good[:len(good)-1], "truncated"},
		"flipped bit":    {flipped, ""},
		"bad checksum":   {tail, "checksum mismatch"},
		"trailing data":  {append(bytes.Clone(good), 0), "after the end"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, _, err := readAll(c.b)
			if !errors.Is(err, secret.ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrCorrupt saying %q", err, c.want)
			}
		})
	}
}

func TestHostileKV(t *testing.T) {
	t.Parallel()
	for name, b := range map[string][]byte{
		"huge key":     binary.AppendUvarint(nil, 1<<40),
		"empty key":    {0},
		"short key":    {5, 'a'},
		"no value len": {1, 'a'},
		"huge value":   binary.AppendUvarint([]byte{1, 'a'}, 1<<40),
		"overflow":     bytes.Repeat([]byte{0xff}, 11),
	} {
		err := backup.ReadKV(bytes.NewReader(b), func(k, v []byte) error { return nil })
		if !errors.Is(err, secret.ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzReader: whatever the bytes, the reader never panics or allocates
// beyond its bounds, and whatever it accepts to the end matched its
// checksum: a reader that accepted a changed backup would fail here, since
// the corpus mutates a valid one.
func FuzzReader(f *testing.F) {
	good, _ := sample(f)
	f.Add(good[:200])
	small := func() []byte {
		var buf bytes.Buffer
		w, _ := backup.NewWriter(&buf, testHeader)
		sec, _ := w.Section(backup.KindAudit)
		io.WriteString(sec, "x\n")
		sec.Close()
		w.Close()
		return buf.Bytes()
	}()
	f.Add(small)
	f.Add([]byte(backup.Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, secs, err := readAll(b)
		if err != nil {
			if !errors.Is(err, secret.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if !bytes.Equal(b, small) && len(secs) > 0 && bytes.Equal(secs[backup.KindAudit], []byte("x\n")) && len(b) == len(small) {
			t.Fatalf("accepted a changed backup: %q", b)
		}
		if kv, ok := secs[backup.KindKV]; ok {
			_ = backup.ReadKV(bytes.NewReader(kv), func(k, v []byte) error { return nil })
		}
	})
}
