package keyring

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/secret"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func mustNew(t *testing.T) *Keyring {
	t.Helper()
	r, err := New(t0)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSealOpenBindsAAD(t *testing.T) {
	t.Parallel()
	r := mustNew(t)
	pt := []byte("hunter2")
	s, err := r.Seal(pt, VersionAAD("prod/db", 3))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s.Ciphertext, pt) {
		t.Fatal("ciphertext contains the plaintext")
	}
	got, err := r.Open(s, VersionAAD("prod/db", 3))
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	for name, aad := range map[string][]byte{
		"other path":    VersionAAD("prod/db2", 3),
		"other version": VersionAAD("prod/db", 4),
		"no aad":        nil,
	} {
		if _, err := r.Open(s, aad); !errors.Is(err, secret.ErrCorrupt) {
			t.Errorf("%s: Open = %v, want ErrCorrupt", name, err)
		}
	}
	s2, _ := r.Seal(pt, VersionAAD("prod/db", 3))
	if bytes.Equal(s.WrappedKey, s2.WrappedKey) || bytes.Equal(s.Ciphertext, s2.Ciphertext) {
		t.Fatal("two seals share a data key or ciphertext")
	}
	s.Ciphertext[0] ^= 1
	if _, err := r.Open(s, VersionAAD("prod/db", 3)); !errors.Is(err, secret.ErrCorrupt) {
		t.Fatalf("tampered ciphertext: %v", err)
	}
}

func TestWrongKeyring(t *testing.T) {
	t.Parallel()
	a, b := mustNew(t), mustNew(t)
	s, err := a.Seal([]byte("v"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Open(s, nil)
	if !errors.Is(err, secret.ErrKey) || !strings.Contains(err.Error(), s.KeyID) {
		t.Fatalf("Open with another keyring = %v, want ErrKey naming %s", err, s.KeyID)
	}
}

func TestRotateRewrap(t *testing.T) {
	t.Parallel()
	r := mustNew(t)
	old := r.Active()
	s, _ := r.Seal([]byte("value"), []byte("aad"))
	newID, err := r.Rotate(t0.Add(time.Hour), nil)
	if err != nil || newID == old || r.Active() != newID {
		t.Fatalf("Rotate = %s, %v (old %s)", newID, err, old)
	}
	if k := r.Keys()[0]; k.Retired.IsZero() {
		t.Fatal("old key not retired")
	}
	nw, err := r.Rewrap(s)
	if err != nil {
		t.Fatal(err)
	}
	if nw.KeyID != newID || !bytes.Equal(nw.Ciphertext, s.Ciphertext) {
		t.Fatal("rewrap changed the ciphertext or kept the old key")
	}
	if err := r.Remove(old); err != nil {
		t.Fatal(err)
	}
	got, err := r.Open(nw, []byte("aad"))
	if err != nil || string(got) != "value" {
		t.Fatalf("open after rewrap without the old key = %q, %v", got, err)
	}
	if _, err := r.Open(s, []byte("aad")); !errors.Is(err, secret.ErrKey) {
		t.Fatalf("old envelope opened without its key: %v", err)
	}
	if err := r.Remove(newID); !errors.Is(err, secret.ErrKey) {
		t.Fatalf("removing the active key: %v", err)
	}
}

func TestKeyFileRoundTripAndPermissions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "master.key")
	r := mustNew(t)
	if _, err := r.Rotate(t0, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", st.Mode(), err)
	}
	got, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Active() != r.Active() || strings.Join(got.IDs(), ",") != strings.Join(r.IDs(), ",") {
		t.Fatalf("loaded %v/%s, saved %v/%s", got.IDs(), got.Active(), r.IDs(), r.Active())
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadFile(path)
		if !errors.Is(err, secret.ErrKey) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: %v, want ErrKey with a chmod hint", mode, err)
		}
	}
	if _, err := LoadFile(filepath.Join(dir, "missing")); !errors.Is(err, secret.ErrKey) || !strings.Contains(err.Error(), "passman init") {
		t.Errorf("missing key file: %v", err)
	}
}

func TestKeyFileRejectsBadContent(t *testing.T) {
	t.Parallel()
	good := mustNew(t)
	dir := t.TempDir()
	gp := filepath.Join(dir, "good")
	if err := good.SaveFile(gp); err != nil {
		t.Fatal(err)
	}
	gb, _ := os.ReadFile(gp)
	key := base64.StdEncoding.EncodeToString(good.active.material[:])
	for name, content := range map[string]string{
		"empty":          "",
		"not json":       "hello",
		"unknown field":  strings.Replace(string(gb), `"version"`, `"extra": 1, "version"`, 1),
		"wrong version":  strings.Replace(string(gb), `"version": 1`, `"version": 2`, 1),
		"id mismatch":    strings.Replace(string(gb), good.Active(), "k0000000000000000", 1),
		"short key":      strings.Replace(string(gb), key, "AAAA", 1),
		"bad base64":     strings.Replace(string(gb), key, "!!!", 1),
		"no keys":        `{"version":1,"active":"x","keys":[]}`,
		"active missing": strings.Replace(string(gb), `"active": "`+good.Active(), `"active": "nope`, 1),
		"huge":           strings.Repeat(" ", maxKeyFileSize+1),
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadFile(p); !errors.Is(err, secret.ErrKey) {
			t.Errorf("%s: LoadFile = %v, want ErrKey", name, err)
		} else if strings.Contains(err.Error(), key) {
			t.Errorf("%s: error quotes key material", name)
		}
	}
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	a := mustNew(t)
	if _, err := a.Rotate(t0, nil); err != nil {
		t.Fatal(err)
	}
	env := a.EncodeEnv()
	r, err := FromEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	if r.Active() != a.Active() || len(r.IDs()) != 2 {
		t.Fatalf("FromEnv: %v active %s; want %v active %s", r.IDs(), r.Active(), a.IDs(), a.Active())
	}
	s, _ := a.Seal([]byte("x"), nil)
	if got, err := r.Open(s, nil); err != nil || string(got) != "x" {
		t.Fatalf("env keyring cannot open file keyring's envelope: %v", err)
	}
	first := strings.Split(env, ",")[0]
	for name, v := range map[string]string{
		"empty": "", "garbage": "not-a-key!", "short": "AAAA", "duplicate": first + "," + first,
	} {
		_, err := FromEnv(v)
		if !errors.Is(err, secret.ErrKey) || !strings.Contains(err.Error(), EnvVar) {
			t.Errorf("%s: FromEnv = %v, want ErrKey naming %s", name, err, EnvVar)
		}
		if err != nil && len(v) > 8 && strings.Contains(err.Error(), v) {
			t.Errorf("%s: error quotes the variable's value", name)
		}
	}
}

func TestSealedBinary(t *testing.T) {
	t.Parallel()
	r := mustNew(t)
	s, _ := r.Seal([]byte("value"), nil)
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Sealed
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if v, err := r.Open(got, nil); err != nil || string(v) != "value" {
		t.Fatalf("round trip: %q, %v", v, err)
	}
	for i := 0; i < len(b); i++ {
		if err := new(Sealed).UnmarshalBinary(b[:i]); err == nil && i < 2+len(s.KeyID)+wrappedSize+nonceSize+tagSize {
			t.Fatalf("truncated to %d bytes accepted", i)
		}
	}
}

// FuzzSealedUnmarshal: a decode either fails with ErrCorrupt, leaving the
// value as it was, or succeeds with every field well formed and re-encodes
// to exactly its input; what decodes opens only if it is the value sealed.
func FuzzSealedUnmarshal(f *testing.F) {
	r, _ := New(t0)
	s, _ := r.Seal([]byte("value"), nil)
	good, _ := s.MarshalBinary()
	f.Add(good)
	f.Add([]byte{1})
	f.Add(good[:len(good)-len("value")-1]) // ciphertext shorter than its tag
	f.Add(append([]byte{1, 0}, good[2:]...))
	f.Add(append([]byte{1, 255}, good[2:]...))
	f.Add(append([]byte{2}, good[1:]...))
	f.Add(append(bytes.Clone(good), 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		before := Sealed{KeyID: "before", WrappedKey: []byte{1}, Nonce: []byte{2}, Ciphertext: []byte{3}}
		s := before
		if err := s.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, secret.ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			if !reflect.DeepEqual(s, before) {
				t.Fatalf("a failed decode changed the value: %+v", s)
			}
			return
		}
		if len(s.KeyID) == 0 || len(s.KeyID) > maxKeyIDLen || len(s.WrappedKey) != wrappedSize ||
			len(s.Nonce) != nonceSize || len(s.Ciphertext) < tagSize {
			t.Fatalf("decoded a malformed value: id %d, wrapped key %d, nonce %d, ciphertext %d bytes",
				len(s.KeyID), len(s.WrappedKey), len(s.Nonce), len(s.Ciphertext))
		}
		out, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("decoded value re-encodes to %x, %v; input %x", out, err, in)
		}
		if !bytes.Equal(b, in) {
			t.Fatal("decoding modified its input")
		}
		pt, err := r.Open(s, nil)
		switch {
		case err == nil && (!bytes.Equal(in, good) || string(pt) != "value"):
			t.Fatalf("a value never sealed opens to %q", pt)
		case err != nil && !errors.Is(err, secret.ErrCorrupt) && !errors.Is(err, secret.ErrKey):
			t.Fatalf("Open: %v, want ErrCorrupt or ErrKey", err)
		}
	})
}

func TestDetectionKey(t *testing.T) {
	t.Parallel()
	seed := bytes.Repeat([]byte{7}, SeedSize)
	a, err := NewDetectionKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewDetectionKey(seed)
	other, _ := NewDetectionKey(bytes.Repeat([]byte{8}, SeedSize))
	fp := a.Fingerprint([]byte("hunter2"))
	if len(fp) != 64 || fp != b.Fingerprint([]byte("hunter2")) {
		t.Fatalf("fingerprint %q not stable", fp)
	}
	if fp == other.Fingerprint([]byte("hunter2")) || fp == a.Fingerprint([]byte("hunter3")) {
		t.Fatal("fingerprint ignores key or value")
	}
	if _, err := NewDetectionKey(seed[:5]); !errors.Is(err, secret.ErrCorrupt) {
		t.Fatalf("short seed: %v", err)
	}
}

// FuzzParseKeyFile feeds arbitrary bytes to the key file parser: it must
// fail cleanly and never echo key material. The input holds markers that
// are replaced by a key (derived from the second argument) in base64 (@K),
// URL-safe base64 (@U), hex (@H) or raw (@R), so key material can sit in
// any field or where a field name belongs; an error must quote none of it.
func FuzzParseKeyFile(f *testing.F) {
	r, _ := New(t0)
	dir := f.TempDir()
	p := filepath.Join(dir, "k")
	if err := r.SaveFile(p); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(p)
	seed := []byte("seed")
	f.Add(good, seed)
	f.Add([]byte(`{"version":1,"active":"x","keys":[{"id":"x","key":"AAAA"}]}`), seed)
	f.Add([]byte(`{}`), seed)
	created := `"created":"2026-11-26T12:00:00Z"`
	for _, doc := range []string{
		`{"version":1,"active":"x","keys":[{"id":"x","key":"@K",` + created + `}]}`,
		`{"version":1,"active":"x","keys":[{"id":"x","key":"@K@K",` + created + `}]}`,
		`{"version":1,"active":"x","keys":[{"id":"x","key":"@H",` + created + `}]}`,
		`{"version":1,"active":"x","keys":[{"id":"x","key":"@R",` + created + `}]}`,
		`{"version":1,"active":"x","keys":[{"id":"x","key":"@K!",` + created + `}]}`,
		`{"version":1,"active":"x","keys":[{"id":"x","key":@K,` + created + `}]}`,
		`{"version":1,"active":"x","keys":[{"id":"x","key":["@K"],` + created + `}]}`,
		`{"version":1,"active":"x","keys":[{"id":"x","key":{"@K":1},` + created + `}]}`,
		`{"version":1,"active":"x","keys":[{"id":"@K","key":"@K",` + created + `}]}`,
		`{"version":1,"active":"@K","keys":[{"id":"x","key":"@U",` + created + `}]}`,
		`{"version":1,"active":"x","keys":[{"id":"x","key":"@K","created":"@K"}]}`,
		`{"version":1,"active":"x","keys":[{"id":"x","key":"@K",` + created + `,"retired":"@H"}]}`,
		`{"version":1,"active":"x","keys":[{"id":"x","@K":"@K",` + created + `}]}`,
		`{"version":"@K","active":"x","keys":[]}`,
		`{"version":1,"active":"x","keys":[{"id":"x","key":"@K",` + created + `}]}@K`,
		`{"version":1,"active":"x","keys":[{"id":"x","key":"@K` + "\\u00zz" + `"}]}`,
		`{"version":1,"active":"x","keys":"@K"}`,
		`{"version":1,"@K":1}`,
		`@K`,
	} {
		f.Add([]byte(doc), seed)
	}
	f.Fuzz(func(t *testing.T, doc, seed []byte) {
		m := sha256.Sum256(seed)
		encoded := map[string]string{
			"@K": base64.StdEncoding.EncodeToString(m[:]),
			"@U": base64.RawURLEncoding.EncodeToString(m[:]),
			"@H": hex.EncodeToString(m[:]),
			"@R": string(m[:]),
		}
		b := doc
		for marker, v := range encoded {
			b = bytes.ReplaceAll(b, []byte(marker), []byte(v))
		}
		kr, err := parseFile(b)
		if err != nil {
			msg := err.Error()
			for name, v := range encoded {
				// Any 8 bytes of the key, 12 characters of its text: more
				// than chance puts in an error message.
				w := 12
				if name == "@R" {
					w = 8
				}
				for i := 0; i+w <= len(v); i++ {
					if strings.Contains(msg, v[i:i+w]) {
						t.Fatalf("error echoes key material (%s): %s", name, msg)
					}
				}
			}
			return
		}
		if kr.active == nil || !kr.Has(kr.Active()) {
			t.Fatalf("parsed keyring has no active key")
		}
		for _, k := range kr.keys {
			if newKey(k.material, k.Created).ID != k.ID {
				t.Fatalf("key %s: id does not match material", k.ID)
			}
		}
	})
}

func TestRotateSaveFailureChangesNothing(t *testing.T) {
	t.Parallel()
	r := mustNew(t)
	old := r.Active()
	boom := errors.New("disk full")
	var saw string
	if _, err := r.Rotate(t0, func(next *Keyring) error { saw = next.Active(); return boom }); !errors.Is(err, boom) {
		t.Fatalf("Rotate = %v, want the save error", err)
	}
	if r.Active() != old || len(r.Keys()) != 1 || !r.Keys()[0].Retired.IsZero() {
		t.Fatalf("a failed save changed the keyring: %+v", r.Keys())
	}
	if saw == old || saw == "" {
		t.Fatalf("save saw active key %q", saw)
	}
	s, _ := r.Seal([]byte("v"), nil)
	if s.KeyID != old {
		t.Fatalf("sealed under %s after a failed rotation", s.KeyID)
	}
}

func TestDeriveKey(t *testing.T) {
	t.Parallel()
	r := mustNew(t)
	old := r.Active()
	a, err := r.DeriveKey(old, "label a")
	if err != nil || len(a) != KeySize {
		t.Fatalf("DeriveKey = %x, %v", a, err)
	}
	if again, _ := r.DeriveKey(old, "label a"); !bytes.Equal(a, again) {
		t.Fatal("derivation is not deterministic")
	}
	if b, _ := r.DeriveKey(old, "label b"); bytes.Equal(a, b) {
		t.Fatal("two labels gave the same key")
	}
	material := r.key(old).material
	if bytes.Equal(a, material[:]) {
		t.Fatal("derived key is the master key")
	}
	// A rotation keeps the old key, and what was derived from it.
	newID, err := r.Rotate(t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if after, err := r.DeriveKey(old, "label a"); err != nil || !bytes.Equal(a, after) {
		t.Fatalf("derivation from the retired key after rotation = %x, %v", after, err)
	}
	if n, _ := r.DeriveKey(newID, "label a"); bytes.Equal(a, n) {
		t.Fatal("two master keys gave the same derived key")
	}
	// The same material from the environment derives the same key.
	env, err := FromEnv(r.EncodeEnv())
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := env.DeriveKey(old, "label a"); !bytes.Equal(a, e) {
		t.Fatal("environment keyring derives another key")
	}
	if err := r.Remove(old); err != nil {
		t.Fatal(err)
	}
	_, err = r.DeriveKey(old, "label a")
	if !errors.Is(err, secret.ErrKey) || !strings.Contains(err.Error(), old) {
		t.Fatalf("DeriveKey with a removed key = %v, want ErrKey naming it", err)
	}
	for _, enc := range []string{base64.StdEncoding.EncodeToString(material[:]), string(material[:])} {
		if strings.Contains(err.Error(), enc) {
			t.Fatal("error quotes key material")
		}
	}
	if _, err := r.DeriveKey(newID, ""); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Fatalf("DeriveKey with an empty label = %v", err)
	}
}
