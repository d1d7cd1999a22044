package keyring

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"sync"

	"github.com/passman-dev/passman/secret"
)

// SeedSize is the size of a store's detection seed.
const SeedSize = 32

// DetectionKey computes keyed fingerprints of secret values. It is derived
// with HKDF from a per-store seed that the master key wraps, not from the
// master key itself, so rotating the master key leaves every fingerprint (and
// the leak-detection index) valid. Knowing it lets one test a guess against
// a fingerprint, never recover a value; it is still kept secret.
type DetectionKey struct {
	key  []byte
	pool sync.Pool
}

// NewDetectionKey derives the detection key from a store seed.
func NewDetectionKey(seed []byte) (*DetectionKey, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("%w: detection seed is %d bytes, want %d", secret.ErrCorrupt, len(seed), SeedSize)
	}
	k, err := hkdf.Key(sha256.New, seed, nil, "passman fingerprint v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive detection key: %w", err)
	}
	return newDetectionKey(k), nil
}

func newDetectionKey(k []byte) *DetectionKey {
	d := &DetectionKey{key: k}
	d.pool.New = func() any { return hmac.New(sha256.New, d.key) }
	return d
}

// Fingerprint returns the lowercase hex HMAC-SHA256 of value.
func (d *DetectionKey) Fingerprint(value []byte) string {
	return hex.EncodeToString(d.Sum(value))
}

// Sum returns the raw 32-byte HMAC of value. It is safe for concurrent use.
func (d *DetectionKey) Sum(value []byte) []byte {
	return d.AppendSum(nil, value)
}

// AppendSum appends the raw 32-byte HMAC of value to dst and returns the
// result: a scanner hashing millions of candidates reuses one buffer
// instead of allocating a sum each. It is safe for concurrent use.
func (d *DetectionKey) AppendSum(dst, value []byte) []byte {
	h := d.pool.Get().(hash.Hash)
	h.Reset()
	h.Write(value)
	dst = h.Sum(dst)
	d.pool.Put(h)
	return dst
}

// String never shows the key.
func (d *DetectionKey) String() string { return "detection key" }

// DetectionKeyFromBytes rebuilds a detection key exported with Bytes, for a
// scanner that has an exported fingerprint index but no store.
func DetectionKeyFromBytes(k []byte) (*DetectionKey, error) {
	if len(k) != 32 {
		return nil, fmt.Errorf("%w: detection key is %d bytes, want 32", secret.ErrInvalidArgument, len(k))
	}
	return newDetectionKey(append([]byte(nil), k...)), nil
}

// Bytes returns the key itself, for exporting a fingerprint index. Whoever
// holds it can test guesses against fingerprints: treat it as a secret.
func (d *DetectionKey) Bytes() []byte { return append([]byte(nil), d.key...) }
