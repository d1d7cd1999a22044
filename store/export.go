package store

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
)

// IndexEntry is one version as the exported fingerprint index sees it.
type IndexEntry struct {
	Fingerprint string
	Path        string
	Version     int
	Stages      []secret.Stage
	State       secret.VersionState
	// Value is the value as fingerprinted (without its line ending for an
	// alternative fingerprint), for the export's strength rule. It is
	// valid only during the call and wiped after it.
	Value []byte
}

// IndexEntries calls fn for every version whose value still exists (active
// or soft-deleted) of the secrets under prefix that allow accepts, in path
// order, in one read transaction: once for the value, and once more for the
// value without its trailing line ending when it has one (see
// versionRecord.AltFingerprint). allow sees each secret's metadata once,
// before any of its values is decrypted, so nothing of a refused secret is
// ever opened.
func (s *Store) IndexEntries(ctx context.Context, prefix string, allow func(path string, md *secret.Metadata) bool, fn func(IndexEntry) error) error {
	if err := secret.ValidatePrefix(prefix); err != nil {
		return err
	}
	return s.b.View(ctx, func(tx Tx) error {
		var r *record
		var path string
		var allowed bool
		return tx.Scan([]byte(prefixSecret+prefix), nil, func(k, v []byte) (bool, error) {
			if err := ctx.Err(); err != nil {
				return false, err
			}
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
				allowed = allow(p, &rec.Meta)
				return true, nil
			}
			if r == nil || p != path {
				return false, fmt.Errorf("%w: value of %s without its record", secret.ErrCorrupt, p)
			}
			n := int(binary.BigEndian.Uint64(k[len(k)-8:]))
			ver := r.version(n)
			if !allowed || ver == nil || ver.State == secret.StateDestroyed || ver.Fingerprint == "" {
				return true, nil
			}
			var sealed keyring.Sealed
			if err := sealed.UnmarshalBinary(v); err != nil {
				return false, fmt.Errorf("%s: %w", p, err)
			}
			value, err := s.kr.Open(sealed, keyring.VersionAAD(p, n))
			if err != nil {
				return false, fmt.Errorf("open %s v%d: %w", p, n, err)
			}
			defer clear(value)
			e := IndexEntry{Fingerprint: ver.Fingerprint, Path: p, Version: n, Stages: r.stagesOf(n), State: ver.State, Value: value}
			if err := fn(e); err != nil {
				return false, err
			}
			if ver.AltFingerprint != "" && ver.AltTrim <= len(value) {
				e.Fingerprint, e.Value = ver.AltFingerprint, value[:len(value)-ver.AltTrim]
				if err := fn(e); err != nil {
					return false, err
				}
			}
			return true, nil
		})
	})
}
