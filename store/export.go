package store

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
)

// IndexEntry is one version as the exported fingerprint index describes it.
type IndexEntry struct {
	Fingerprint string
	Path        string
	Version     int
	Stages      []secret.Stage
	State       secret.VersionState
	// Length is the value's length, read from its ciphertext's size: AES-GCM
	// adds a fixed 16-byte tag, so nothing is decrypted.
	Length int
}

// gcmTagSize is what AES-GCM adds to a plaintext.
const gcmTagSize = 16

// IndexEntries calls fn for every version whose value still exists (active
// or soft-deleted), in path order, in one read transaction: once for the
// value, and once more for the value without its trailing line ending when
// it has one (see versionRecord.AltFingerprint).
func (s *Store) IndexEntries(ctx context.Context, fn func(IndexEntry) error) error {
	return s.b.View(ctx, func(tx Tx) error {
		var r *record
		var path string
		return tx.Scan([]byte(prefixSecret), nil, func(k, v []byte) (bool, error) {
			p, isRecord, ok := splitSecretKey(k)
			if !ok {
				return false, fmt.Errorf("%w: malformed key %q", secret.ErrCorrupt, k)
			}
			if isRecord {
				rec, err := decodeRecord(p, v)
				if err != nil {
					return false, err
				}
				r, path = rec, p
				return true, nil
			}
			if r == nil || p != path {
				return false, fmt.Errorf("%w: value of %s without its record", secret.ErrCorrupt, p)
			}
			var sealed keyring.Sealed
			if err := sealed.UnmarshalBinary(v); err != nil {
				return false, fmt.Errorf("%s: %w", p, err)
			}
			n := int(binary.BigEndian.Uint64(k[len(k)-8:]))
			ver := r.version(n)
			if ver == nil || ver.State == secret.StateDestroyed || ver.Fingerprint == "" {
				return true, nil
			}
			e := IndexEntry{Fingerprint: ver.Fingerprint, Path: p, Version: n, Stages: r.stagesOf(n), State: ver.State, Length: len(sealed.Ciphertext) - gcmTagSize}
			if err := fn(e); err != nil {
				return false, err
			}
			if ver.AltFingerprint != "" {
				e.Fingerprint, e.Length = ver.AltFingerprint, e.Length-ver.AltTrim
				if err := fn(e); err != nil {
					return false, err
				}
			}
			return true, nil
		})
	})
}
