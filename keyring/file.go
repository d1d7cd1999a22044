package keyring

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/passman-dev/passman/internal/fsx"
	"github.com/passman-dev/passman/secret"
)

// maxKeyFileSize bounds what LoadFile reads: a key file holds a handful of
// 32-byte keys, so anything large is not one.
const maxKeyFileSize = 1 << 20

type fileFormat struct {
	Version int       `json:"version"`
	Active  string    `json:"active"`
	Keys    []fileKey `json:"keys"`
}

type fileKey struct {
	ID      string    `json:"id"`
	Key     string    `json:"key"`
	Created time.Time `json:"created"`
	Retired time.Time `json:"retired,omitzero"`
}

// LoadFile reads a key file. It refuses a file that group or others can read
// or write, as ssh does for private keys: a key other users can read is no
// longer only ours.
func LoadFile(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: key file %s does not exist; run 'passman init' or set %s", secret.ErrKey, path, EnvVar)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: open key file: %v", secret.ErrKey, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: stat key file: %v", secret.ErrKey, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: key file %s is not a regular file", secret.ErrKey, path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: key file %s is accessible by others (mode %04o); run chmod 600 %s", secret.ErrKey, path, perm, path)
	}
	if st.Size() > maxKeyFileSize {
		return nil, fmt.Errorf("%w: key file %s is %d bytes; a key file is under 1 MiB", secret.ErrKey, path, st.Size())
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("%w: read key file: %v", secret.ErrKey, err)
	}
	r, err := parseFile(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%w: key file %s: %v", secret.ErrKey, path, err)
	}
	return r, nil
}

func parseFile(b []byte) (*Keyring, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ff fileFormat
	if err := dec.Decode(&ff); err != nil {
		return nil, fmt.Errorf("not a passman key file (%s)", jsonProblem(err))
	}
	if ff.Version != 1 {
		return nil, fmt.Errorf("unsupported key file version %d", ff.Version)
	}
	if len(ff.Keys) == 0 {
		return nil, fmt.Errorf("holds no keys")
	}
	r := &Keyring{}
	for i, fk := range ff.Keys {
		m, err := decodeKey(fk.Key)
		if err != nil {
			return nil, fmt.Errorf("key %d: %v", i+1, err)
		}
		k := newKey(m, fk.Created)
		// The ID is derived from the material; a mismatch means the file was
		// edited by hand or damaged.
		if k.ID != fk.ID {
			return nil, fmt.Errorf("key %d: id %s does not match its key material", i+1, quoteID(fk.ID))
		}
		if r.key(k.ID) != nil {
			return nil, fmt.Errorf("key %s listed twice", k.ID)
		}
		k.Retired = fk.Retired
		r.keys = append(r.keys, k)
		if k.ID == ff.Active {
			r.active = k
		}
	}
	if r.active == nil {
		return nil, fmt.Errorf("active key %s is not in the file", quoteID(ff.Active))
	}
	return r, nil
}

// jsonProblem describes a decoding error without quoting the file: the
// decoder's own messages quote unknown field names and unparsable times,
// and a hand-edited key file may hold key material in either place.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("field %s has the wrong type", te.Field)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field"
	}
	return "malformed"
}

// quoteID quotes s for an error if it has the form of a key id, which tells
// nothing about the key; anything else might be key material in the wrong
// place.
func quoteID(s string) string {
	if len(s) == 17 && s[0] == 'k' && isLowerHex(s[1:]) {
		return strconv.Quote(s)
	}
	return "(not a key id)"
}

func isLowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// SaveFile writes the keyring to path with mode 0600, atomically: a crash
// leaves either the old file or the new one, never a torn key file, which
// would lock the owner out of every secret.
func (r *Keyring) SaveFile(path string) error {
	r.mu.RLock()
	ff := fileFormat{Version: 1, Active: r.active.ID}
	for _, k := range r.keys {
		ff.Keys = append(ff.Keys, fileKey{ID: k.ID, Key: base64.StdEncoding.EncodeToString(k.material[:]), Created: k.Created, Retired: k.Retired})
	}
	r.mu.RUnlock()
	b, err := json.MarshalIndent(ff, "", "  ")
	if err != nil {
		return fmt.Errorf("encode key file: %w", err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".passman-key-*")
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("install key file: %w", err)
	}
	return fsx.SyncDir(dir)
}
