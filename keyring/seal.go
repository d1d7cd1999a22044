package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/passman-dev/passman/secret"
)

const (
	sealedFormat = 1
	nonceSize    = 12
	tagSize      = 16
	wrappedSize  = nonceSize + KeySize + tagSize
	maxKeyIDLen  = 64
)

// Sealed is a value sealed under a data key, with the data key wrapped by the
// master key KeyID.
type Sealed struct {
	KeyID      string
	WrappedKey []byte // nonce || AES-GCM(KEK, data key)
	Nonce      []byte
	Ciphertext []byte // AES-GCM(data key, value, aad) including the tag
}

// Seal encrypts plaintext under a fresh random data key. aad is bound into
// the ciphertext: Open fails unless it is given the same aad, which is how the
// store ties a ciphertext to its path and version.
func (r *Keyring) Seal(plaintext, aad []byte) (Sealed, error) {
	var dek [KeySize]byte
	if _, err := rand.Read(dek[:]); err != nil {
		return Sealed{}, fmt.Errorf("generate data key: %w", err)
	}
	defer clear(dek[:])
	r.mu.RLock()
	active := r.active
	r.mu.RUnlock()
	wrapped, err := wrap(active, dek[:])
	if err != nil {
		return Sealed{}, err
	}
	gcm, err := newGCM(dek[:])
	if err != nil {
		return Sealed{}, err
	}
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, fmt.Errorf("generate nonce: %w", err)
	}
	return Sealed{KeyID: active.ID, WrappedKey: wrapped, Nonce: nonce, Ciphertext: gcm.Seal(nil, nonce, plaintext, aad)}, nil
}

// Open decrypts s. A wrong aad, a tampered ciphertext or a key the keyring
// does not hold is an error; nothing is returned in that case.
func (r *Keyring) Open(s Sealed, aad []byte) ([]byte, error) {
	dek, err := r.unwrap(s)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	gcm, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	pt, err := gcm.Open(nil, s.Nonce, s.Ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: ciphertext does not authenticate (moved, edited or damaged)", secret.ErrCorrupt)
	}
	return pt, nil
}

// Rewrap re-wraps s's data key under the active master key. The value's
// ciphertext is untouched and never decrypted.
func (r *Keyring) Rewrap(s Sealed) (Sealed, error) {
	r.mu.RLock()
	active := r.active
	r.mu.RUnlock()
	if s.KeyID == active.ID {
		return s, nil
	}
	dek, err := r.unwrap(s)
	if err != nil {
		return Sealed{}, err
	}
	defer clear(dek)
	wrapped, err := wrap(active, dek)
	if err != nil {
		return Sealed{}, err
	}
	s.KeyID, s.WrappedKey = active.ID, wrapped
	return s, nil
}

func (r *Keyring) unwrap(s Sealed) ([]byte, error) {
	r.mu.RLock()
	k := r.key(s.KeyID)
	r.mu.RUnlock()
	if k == nil {
		return nil, fmt.Errorf("%w: data key is wrapped by master key %s, which this keyring does not hold (have %v)", secret.ErrKey, s.KeyID, r.IDs())
	}
	if len(s.WrappedKey) != wrappedSize {
		return nil, fmt.Errorf("%w: wrapped data key is %d bytes, want %d", secret.ErrCorrupt, len(s.WrappedKey), wrappedSize)
	}
	gcm, err := k.aead()
	if err != nil {
		return nil, err
	}
	dek, err := gcm.Open(nil, s.WrappedKey[:nonceSize], s.WrappedKey[nonceSize:], wrapAAD(k.ID))
	if err != nil {
		return nil, fmt.Errorf("%w: data key does not unwrap under master key %s", secret.ErrCorrupt, k.ID)
	}
	return dek, nil
}

func wrap(k *Key, dek []byte) ([]byte, error) {
	gcm, err := k.aead()
	if err != nil {
		return nil, err
	}
	out := make([]byte, nonceSize, wrappedSize)
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	return gcm.Seal(out, out[:nonceSize], dek, wrapAAD(k.ID)), nil
}

func wrapAAD(id string) []byte { return []byte("passman data key v1\x00" + id) }

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return g, nil
}

// MarshalBinary encodes s compactly: format byte, key ID, wrapped key, nonce,
// ciphertext.
func (s Sealed) MarshalBinary() ([]byte, error) {
	if len(s.KeyID) == 0 || len(s.KeyID) > maxKeyIDLen || len(s.WrappedKey) != wrappedSize || len(s.Nonce) != nonceSize {
		return nil, fmt.Errorf("%w: malformed sealed value", secret.ErrInvalidArgument)
	}
	b := make([]byte, 0, 2+len(s.KeyID)+wrappedSize+nonceSize+len(s.Ciphertext))
	b = append(b, sealedFormat, byte(len(s.KeyID)))
	b = append(b, s.KeyID...)
	b = append(b, s.WrappedKey...)
	b = append(b, s.Nonce...)
	return append(b, s.Ciphertext...), nil
}

// UnmarshalBinary decodes MarshalBinary's output, validating every length so
// that damaged storage is reported as corrupt rather than misread. The
// result aliases b.
func (s *Sealed) UnmarshalBinary(b []byte) error {
	if len(b) < 2 || b[0] != sealedFormat {
		return fmt.Errorf("%w: sealed value has unknown format", secret.ErrCorrupt)
	}
	n := int(b[1])
	if n == 0 || n > maxKeyIDLen || len(b) < 2+n+wrappedSize+nonceSize+tagSize {
		return fmt.Errorf("%w: sealed value is truncated", secret.ErrCorrupt)
	}
	b = b[2:]
	s.KeyID, b = string(b[:n]), b[n:]
	s.WrappedKey, b = b[:wrappedSize], b[wrappedSize:]
	s.Nonce, s.Ciphertext = b[:nonceSize], b[nonceSize:]
	return nil
}

// VersionAAD is the additional data that binds a version's ciphertext to its
// path and version number.
func VersionAAD(path string, version int) []byte {
	b := make([]byte, 0, len("passman value v1\x00")+len(path)+9)
	b = append(b, "passman value v1\x00"...)
	b = append(b, path...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint64(b, uint64(version))
}
