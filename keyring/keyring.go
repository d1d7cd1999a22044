// Package keyring holds passman's master keys and does its envelope
// encryption: every secret version is sealed under its own random data key,
// and data keys are wrapped by the active master key (the key-encryption key),
// as AWS KMS envelopes and SOPS do. Rotating the master key re-wraps data keys
// without touching values.
package keyring

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/passman-dev/passman/secret"
)

// KeySize is the size of master and data keys: AES-256.
const KeySize = 32

// Key is one master key. Its ID is derived from the key material, so the same
// key yields the same ID whether it comes from a key file or the environment,
// and a store can tell a wrong key from a missing one without storing any
// secret: the ID doubles as a key check value.
type Key struct {
	ID      string
	Created time.Time
	// Retired is set once a newer key became active; a retired key only
	// unwraps data keys that a rotation has not re-wrapped yet.
	Retired time.Time
	// Active is set on the key that wraps new data keys (in Keys' output).
	Active   bool
	material [KeySize]byte

	// kek is the AES-GCM of material, built with the key: every Open
	// unwraps a data key with it, and a key schedule per read was a large
	// share of a read's allocations. crypto/cipher's AES-GCM keeps no
	// per-call state, so goroutines share it.
	kek    cipher.AEAD
	kekErr error
}

// aead returns the key's AES-GCM.
func (k *Key) aead() (cipher.AEAD, error) { return k.kek, k.kekErr }

// String never shows key material.
func (k *Key) String() string { return "key " + k.ID }

// Keyring is an ordered set of master keys with exactly one active key.
// It is safe for concurrent use: a server keeps sealing values while an
// operator rotates the master key.
type Keyring struct {
	rotateMu sync.Mutex // serialises Rotate
	mu       sync.RWMutex
	keys     []*Key // oldest first
	active   *Key
}

// New returns a keyring with one freshly generated active key.
func New(now time.Time) (*Keyring, error) {
	k, err := generateKey(now)
	if err != nil {
		return nil, err
	}
	return &Keyring{keys: []*Key{k}, active: k}, nil
}

func generateKey(now time.Time) (*Key, error) {
	var m [KeySize]byte
	if _, err := rand.Read(m[:]); err != nil {
		return nil, fmt.Errorf("generate master key: %w", err)
	}
	return newKey(m, now), nil
}

func newKey(m [KeySize]byte, created time.Time) *Key {
	mac := hmac.New(sha256.New, m[:])
	mac.Write([]byte("passman key id v1"))
	k := &Key{ID: "k" + hex.EncodeToString(mac.Sum(nil)[:8]), Created: created.UTC(), material: m}
	k.kek, k.kekErr = newGCM(m[:])
	return k
}

// Active returns the ID of the key that wraps new data keys.
func (r *Keyring) Active() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.active.ID
}

// IDs lists every key ID, oldest first.
func (r *Keyring) IDs() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.ID
	}
	return ids
}

// Keys returns copies of the key descriptions (without material).
func (r *Keyring) Keys() []Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Key, len(r.keys))
	for i, k := range r.keys {
		out[i] = Key{ID: k.ID, Created: k.Created, Retired: k.Retired, Active: k == r.active}
	}
	return out
}

// Has reports whether the keyring holds key id.
func (r *Keyring) Has(id string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.key(id) != nil
}

// key looks up id; the caller holds r.mu.
func (r *Keyring) key(id string) *Key {
	for _, k := range r.keys {
		if k.ID == id {
			return k
		}
	}
	return nil
}

// Rotate generates a new key, makes it active and retires the others. save,
// if not nil, is given the rotated keyring before this one changes (to write
// the key file): if it fails, this keyring is left as it was, so nothing is
// ever sealed under a key that was not saved.
func (r *Keyring) Rotate(now time.Time, save func(*Keyring) error) (string, error) {
	k, err := generateKey(now)
	if err != nil {
		return "", err
	}
	// Rotations are serialised, but r.mu is not held while save runs: save
	// may wait for a database transaction that is itself sealing a value.
	r.rotateMu.Lock()
	defer r.rotateMu.Unlock()
	r.mu.RLock()
	next := &Keyring{}
	for _, old := range r.keys {
		c := *old
		if c.Retired.IsZero() {
			c.Retired = now.UTC()
		}
		next.keys = append(next.keys, &c)
	}
	r.mu.RUnlock()
	next.keys = append(next.keys, k)
	next.active = k
	if save != nil {
		if err := save(next); err != nil {
			return "", err
		}
	}
	r.mu.Lock()
	r.keys, r.active = next.keys, next.active
	r.mu.Unlock()
	return k.ID, nil
}

// Remove drops retired keys, so a key file stops
// carrying keys no data key is wrapped under any more.
func (r *Keyring) Remove(ids ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if id == r.active.ID {
			return fmt.Errorf("%w: cannot remove the active key %s", secret.ErrKey, id)
		}
	}
	r.keys = slices.DeleteFunc(r.keys, func(k *Key) bool { return slices.Contains(ids, k.ID) })
	return nil
}

// EnvVar is the environment variable that supplies master keys in CI, as an
// alternative to a key file: base64 keys separated by commas, active first.
const EnvVar = "PASSMAN_MASTER_KEY"

// FromEnv parses the value of EnvVar. Keys are standard or URL base64 of
// exactly 32 bytes.
func FromEnv(value string) (*Keyring, error) {
	parts := strings.Split(strings.TrimSpace(value), ",")
	r := &Keyring{}
	for i, p := range parts {
		m, err := decodeKey(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("%w: %s key %d: %v", secret.ErrKey, EnvVar, i+1, err)
		}
		k := newKey(m, time.Time{})
		if r.key(k.ID) != nil {
			return nil, fmt.Errorf("%w: %s lists key %s twice", secret.ErrKey, EnvVar, k.ID)
		}
		r.keys = append(r.keys, k)
	}
	r.active = r.keys[0]
	return r, nil
}

// EncodeEnv renders the keyring as a value for EnvVar (active key first).
// The result is key material: treat it as a secret.
func (r *Keyring) EncodeEnv() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	parts := []string{base64.StdEncoding.EncodeToString(r.active.material[:])}
	for _, k := range r.keys {
		if k != r.active {
			parts = append(parts, base64.StdEncoding.EncodeToString(k.material[:]))
		}
	}
	return strings.Join(parts, ",")
}

func decodeKey(s string) ([KeySize]byte, error) {
	var m [KeySize]byte
	if s == "" {
		return m, fmt.Errorf("empty key")
	}
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return m, fmt.Errorf("not valid base64")
	}
	if len(b) != KeySize {
		return m, fmt.Errorf("decodes to %d bytes, want %d", len(b), KeySize)
	}
	copy(m[:], b)
	return m, nil
}

// DeriveKey returns a 32-byte key derived with HKDF-SHA256 from master key
// id for the one purpose that label names: distinct labels give independent
// keys, and a derived key tells nothing about the master key, which never
// leaves the keyring. Deriving from a named key rather than the active one
// lets a caller check what it signed before a rotation, while the keyring
// still holds the old key. It fails with an error wrapping secret.ErrKey if
// the keyring does not hold id.
func (r *Keyring) DeriveKey(id, label string) ([]byte, error) {
	if label == "" {
		return nil, fmt.Errorf("%w: derive key: empty label", secret.ErrInvalidArgument)
	}
	r.mu.RLock()
	k := r.key(id)
	r.mu.RUnlock()
	if k == nil {
		return nil, fmt.Errorf("%w: master key %s is not in the keyring", secret.ErrKey, id)
	}
	out, err := hkdf.Key(sha256.New, k.material[:], nil, label, KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	return out, nil
}
