// Package store is passman's encrypted, versioned secret store. It owns the
// key layout on a Backend, seals every version under its own data key, keeps
// stage labels and the fingerprint index, and knows nothing of users,
// policies or the audit log: its caller (package core) hooks those in
// through Call.
package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
)

// Key layout. A secret's record and its sealed values sit next to each other
// in the keyspace, so a Get reads one leaf page instead of descending the
// tree twice (on a million-secret store this halves the pages a read
// touches). Paths never contain NUL, so NUL ends the path: a record key ends
// with it, a value key continues with 0x01 and the version, and both sort
// before the secret's children ("s/a/b"), since '/' > 0x01.
const (
	prefixSecret = "s/" // s/<path>\0 -> record (JSON); s/<path>\0\x01<version:8> -> sealed value
	prefixFP     = "f/" // f/<fingerprint:32><path>\0<version:8> -> empty
	keyInfo      = "m/store"
	keySeed      = "m/seed"
	prefixMeta   = "m/x/" // m/x/<name> -> caller-owned metadata (audit head)
)

// ReadPrefixes are the key prefixes that reading a secret touches: what a
// backend that keeps hot keys in memory (store/etcd's read cache) holds.
func ReadPrefixes() []string { return []string{prefixSecret} }

// formatVersion is the on-disk layout version recorded at init.
const formatVersion = 1

// Store is a secret store over a Backend. It is safe for concurrent use.
type Store struct {
	b   Backend
	kr  *keyring.Keyring
	det *keyring.DetectionKey
	now func() time.Time

	// keysMu guards keys, the master key IDs registered in the store's info.
	// Nothing is sealed under a key the store has not registered, so a
	// mistyped or unsaved key cannot leave values only it can open.
	keysMu sync.RWMutex
	keys   map[string]bool

	// records caches decoded records for reads (GetIf).
	records *recordCache
}

// Options configure Open and Init.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Info is what the store records about itself at init.
type Info struct {
	ID        string    `json:"id"`
	Format    int       `json:"format"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	// Keys lists the master key IDs that wrap, or wrapped, this store's data
	// keys, oldest first; Active is the one new versions use.
	Keys   []string `json:"keys"`
	Active string   `json:"active"`
	// Retired keys no longer wrap anything: a rotation finished re-wrapping.
	Retired []string `json:"retired,omitempty"`
}

// ErrNotInitialized is returned by Open on a backend without a store.
var ErrNotInitialized = fmt.Errorf("%w: store is not initialized; run 'passman init'", secret.ErrNotFound)

// ErrAlreadyInitialized is returned by Init on a backend that holds a store.
var ErrAlreadyInitialized = fmt.Errorf("%w: store is already initialized", secret.ErrPrecondition)

// Init creates a new store on an empty backend: its info record and a random
// detection seed wrapped by the keyring's active key.
func Init(ctx context.Context, b Backend, kr *keyring.Keyring, actor string, opts Options) error {
	now := clock(opts)
	var id [16]byte
	var seed [keyring.SeedSize]byte
	if _, err := rand.Read(id[:]); err != nil {
		return fmt.Errorf("generate store id: %w", err)
	}
	if _, err := rand.Read(seed[:]); err != nil {
		return fmt.Errorf("generate detection seed: %w", err)
	}
	sealed, err := kr.Seal(seed[:], []byte(keySeed))
	clear(seed[:])
	if err != nil {
		return fmt.Errorf("seal detection seed: %w", err)
	}
	sb, err := sealed.MarshalBinary()
	if err != nil {
		return err
	}
	info := Info{ID: hex.EncodeToString(id[:]), Format: formatVersion, CreatedAt: now().UTC(), CreatedBy: actor, Keys: []string{kr.Active()}, Active: kr.Active()}
	ib, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("encode store info: %w", err)
	}
	return b.Update(ctx, func(tx Tx) error {
		if _, err := tx.Get([]byte(keyInfo)); err == nil {
			return ErrAlreadyInitialized
		} else if !errors.Is(err, ErrKeyNotFound) {
			return err
		}
		if err := tx.Put([]byte(keySeed), sb); err != nil {
			return err
		}
		return tx.Put([]byte(keyInfo), ib)
	})
}

// Open opens the store on b with keyring kr. It fails with an error wrapping
// secret.ErrKey if kr holds none of the store's master keys, and changes
// nothing in that case.
func Open(ctx context.Context, b Backend, kr *keyring.Keyring, opts Options) (*Store, error) {
	var info Info
	var seed []byte
	err := b.View(ctx, func(tx Tx) error {
		var err error
		if info, err = readInfo(tx); err != nil {
			return err
		}
		if !sharesKey(info, kr) {
			return fmt.Errorf("%w: master key %s does not match this store (store uses %s); check %s or --key-file", secret.ErrKey, kr.Active(), info.Active, keyring.EnvVar)
		}
		sb, err := tx.Get([]byte(keySeed))
		if err != nil {
			return fmt.Errorf("%w: detection seed missing: %v", secret.ErrCorrupt, err)
		}
		var sealed keyring.Sealed
		if err := sealed.UnmarshalBinary(sb); err != nil {
			return fmt.Errorf("detection seed: %w", err)
		}
		seed, err = kr.Open(sealed, []byte(keySeed))
		if err != nil {
			return fmt.Errorf("open detection seed: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	det, err := keyring.NewDetectionKey(seed)
	clear(seed)
	if err != nil {
		return nil, err
	}
	s := &Store{b: b, kr: kr, det: det, now: clock(opts), keys: map[string]bool{}, records: newRecordCache()}
	for _, id := range info.Keys {
		s.keys[id] = true
	}
	return s, nil
}

func sharesKey(info Info, kr *keyring.Keyring) bool {
	for _, id := range info.Keys {
		if kr.Has(id) {
			return true
		}
	}
	return false
}

func readInfo(tx Tx) (Info, error) {
	var info Info
	ib, err := tx.Get([]byte(keyInfo))
	if errors.Is(err, ErrKeyNotFound) {
		return info, ErrNotInitialized
	}
	if err != nil {
		return info, fmt.Errorf("read store info: %w", err)
	}
	if err := json.Unmarshal(ib, &info); err != nil {
		return info, fmt.Errorf("%w: store info: %v", secret.ErrCorrupt, err)
	}
	if info.Format != formatVersion {
		return info, fmt.Errorf("%w: store format %d is not supported by this passman (want %d)", secret.ErrPrecondition, info.Format, formatVersion)
	}
	return info, nil
}

func clock(o Options) func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

// Info returns the store's info record.
func (s *Store) Info(ctx context.Context) (Info, error) {
	return ReadInfo(ctx, s.b)
}

// DetectionKey returns the key that computes value fingerprints.
func (s *Store) DetectionKey() *keyring.DetectionKey { return s.det }

// Keyring returns the keyring the store was opened with, for callers that
// sign or check what they record in the store's metadata.
func (s *Store) Keyring() *keyring.Keyring { return s.kr }

// ReadInfo reads the store's info straight from a backend, without a
// keyring, as ReadMeta reads metadata.
func ReadInfo(ctx context.Context, b Backend) (Info, error) {
	var info Info
	err := b.View(ctx, func(tx Tx) error {
		var err error
		info, err = readInfo(tx)
		return err
	})
	return info, err
}

// Backend returns the backend the store runs on.
func (s *Store) Backend() Backend { return s.b }

func secretKey(path string) []byte { return []byte(prefixSecret + path + "\x00") }

func valueKey(path string, version int) []byte {
	b := make([]byte, 0, len(prefixSecret)+len(path)+10)
	b = append(b, prefixSecret...)
	b = append(b, path...)
	b = append(b, 0, 1)
	return binary.BigEndian.AppendUint64(b, uint64(version))
}

// splitSecretKey parses a key under prefixSecret into its path and whether
// it is the record (rather than a value).
func splitSecretKey(k []byte) (path string, isRecord bool, ok bool) {
	rest := k[len(prefixSecret):]
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return "", false, false
	}
	return string(rest[:i]), i == len(rest)-1, true
}

func fpKey(fp []byte, path string, version int) []byte {
	b := make([]byte, 0, len(prefixFP)+len(fp)+len(path)+9)
	b = append(b, prefixFP...)
	b = append(b, fp...)
	b = append(b, path...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint64(b, uint64(version))
}

// parseFPKey splits the part of an index key after f/<fingerprint>.
func parseFPKey(rest []byte) (string, int, bool) {
	i := bytes.IndexByte(rest, 0)
	if i < 0 || len(rest)-i-1 != 8 {
		return "", 0, false
	}
	return string(rest[:i]), int(binary.BigEndian.Uint64(rest[i+1:])), true
}

// MetaKey is the backend key of caller-owned metadata name (or, for a
// prefix of names, the prefix of their keys), for callers that watch the
// backend for changes to it.
func MetaKey(name string) []byte { return []byte(prefixMeta + name) }

// PutMeta stores caller-owned metadata inside tx, such as the audit chain
// head that must commit atomically with a change.
func PutMeta(tx Tx, name string, value []byte) error {
	return tx.Put([]byte(prefixMeta+name), value)
}

// creator is a transaction that can write a key new to the store, which
// its commit may check (store/etcd's).
type creator interface {
	Create(key, value []byte) error
}

// CreateMeta is PutMeta of a name new to the store (a new audit entry): a
// backend that can check at commit that it does not exist yet (store/etcd
// checks one such name per transaction) may then send a commit whose
// answer was lost again without the risk of applying it twice. Elsewhere
// it is PutMeta.
func CreateMeta(tx Tx, name string, value []byte) error {
	if c, ok := tx.(creator); ok {
		return c.Create([]byte(prefixMeta+name), value)
	}
	return PutMeta(tx, name, value)
}

// MetaTx reads caller-owned metadata inside tx; a missing name returns nil,
// nil. The slice is valid until tx ends.
func MetaTx(tx Tx, name string) ([]byte, error) {
	v, err := tx.Get([]byte(prefixMeta + name))
	if errors.Is(err, ErrKeyNotFound) {
		return nil, nil
	}
	return v, err
}

// ScanMeta calls fn with the name and value of each caller-owned metadata
// record whose name starts with prefix, in byte order of names, so a caller
// can keep one record per item (one per token, say) instead of an index
// record it rewrites whole on every change. It stops when fn returns false
// or an error, returning that error. The value is valid until tx ends.
func ScanMeta(tx Tx, prefix string, fn func(name string, value []byte) (bool, error)) error {
	return tx.Scan([]byte(prefixMeta+prefix), nil, func(k, v []byte) (bool, error) {
		return fn(string(k[len(prefixMeta):]), v)
	})
}

// DeleteMeta removes caller-owned metadata inside tx; removing a missing
// name is not an error.
func DeleteMeta(tx Tx, name string) error {
	return tx.Delete([]byte(prefixMeta + name))
}

// Meta reads caller-owned metadata; a missing name returns nil, nil.
func (s *Store) Meta(ctx context.Context, name string) ([]byte, error) {
	return ReadMeta(ctx, s.b, name)
}

// UpdateMeta rewrites caller-owned metadata with fn(old) in its own
// transaction, batched with concurrent callers where the backend can.
func (s *Store) UpdateMeta(ctx context.Context, name string, fn func(old []byte) ([]byte, error)) error {
	return s.batch(ctx, func(tx Tx) error {
		old, err := MetaTx(tx, name)
		if err != nil {
			return err
		}
		nv, err := fn(old)
		if err != nil || nv == nil {
			return err
		}
		return PutMeta(tx, name, nv)
	})
}

// batcher is a Backend that can coalesce concurrent write transactions into
// one commit (bbolt's Batch), which is how 32 writers share one fsync.
type batcher interface {
	Batch(ctx context.Context, fn func(tx Tx) error) error
}

func (s *Store) batch(ctx context.Context, fn func(tx Tx) error) error {
	if b, ok := s.b.(batcher); ok {
		return b.Batch(ctx, fn)
	}
	return s.b.Update(ctx, fn)
}

// ReadMeta reads caller-owned metadata straight from a backend, without a
// keyring: audit verification works even when the master key is lost.
func ReadMeta(ctx context.Context, b Backend, name string) ([]byte, error) {
	var out []byte
	err := b.View(ctx, func(tx Tx) error {
		v, err := MetaTx(tx, name)
		out = bytes.Clone(v)
		return err
	})
	return out, err
}

// RegisterKey records master key id as one that wraps this store's data
// keys, so values may be sealed under it. Rotation registers the new key
// before it becomes active.
func (s *Store) RegisterKey(ctx context.Context, id string) error {
	err := s.updateInfo(ctx, func(info *Info) {
		if !slices.Contains(info.Keys, id) {
			info.Keys = append(info.Keys, id)
		}
	})
	if err != nil {
		return fmt.Errorf("register master key %s: %w", id, err)
	}
	s.keysMu.Lock()
	s.keys[id] = true
	s.keysMu.Unlock()
	return nil
}

// checkSealKey refuses a sealed value whose key the store has not
// registered: typically PASSMAN_MASTER_KEY with a wrong or new key first.
// A key this process does not know is looked up in the store's info in
// tx: on a store shared by several servers another one may have
// registered it (a master key rotation).
func (s *Store) checkSealKey(tx Tx, id string) error {
	s.keysMu.RLock()
	ok := s.keys[id]
	s.keysMu.RUnlock()
	if ok {
		return nil
	}
	if info, err := readInfo(tx); err == nil && slices.Contains(info.Keys, id) {
		s.keysMu.Lock()
		s.keys[id] = true
		s.keysMu.Unlock()
		return nil
	}
	return fmt.Errorf("%w: the active master key %s is not registered with this store; if it is a new key, run 'passman keys rewrap' to adopt it, otherwise check %s", secret.ErrKey, id, keyring.EnvVar)
}

// InfoTx reads the store's info inside tx, for a caller that copies the
// store (a backup) and must name it as that transaction sees it.
func InfoTx(tx Tx) (Info, error) { return readInfo(tx) }
