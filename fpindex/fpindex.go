// Package fpindex is the exported fingerprint index: everything a leak
// scanner needs to recognise passman's own secrets in scanned text without
// the store or the master key — the detection key and, for every managed
// version, its keyed fingerprint, where it lives and its length.
//
// Threat model. The file holds no secret value and no encryption key. It
// does hold the detection key, so whoever has the file can test a guess
// against every fingerprint: a managed secret with little entropy (a short
// or human-chosen password) can be brute-forced offline, and the lengths
// narrow the search. Generated values (32 characters from 62, ~190 bits)
// are out of reach. Treat the file like a CI secret: pass it to the scan
// job as a masked secret or a short-lived artifact, never commit it, and
// re-export after rotations (it goes stale, it does not go wrong: a stale
// file misses new versions).
package fpindex

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
)

// FormatVersion is the version of the file format this package writes.
const FormatVersion = 1

// MaxFileSize bounds what Read accepts: a million entries is about 200 MB.
const MaxFileSize = 512 << 20

// File is the exported index as stored (JSON).
type File struct {
	Format       int       `json:"format"`
	StoreID      string    `json:"store_id"`
	CreatedAt    time.Time `json:"created_at"`
	DetectionKey []byte    `json:"detection_key"` // base64 in JSON
	Entries      []Entry   `json:"entries"`
}

// Entry is one managed version.
type Entry struct {
	Fingerprint string              `json:"fingerprint"` // lowercase hex HMAC-SHA256
	Path        string              `json:"path"`
	Version     int                 `json:"version"`
	Stages      []secret.Stage      `json:"stages,omitempty"`
	State       secret.VersionState `json:"state"`
	// Length is the value's length in bytes (from its ciphertext's size,
	// nothing is decrypted); a scanner fingerprints only candidates of the
	// lengths present.
	Length int `json:"length"`
}

// Write encodes f.
func Write(w io.Writer, f File) error {
	f.Format = FormatVersion
	enc := json.NewEncoder(w)
	if err := enc.Encode(f); err != nil {
		return fmt.Errorf("write fingerprint index: %w", err)
	}
	return nil
}

// Index answers "is this value a managed secret?" in memory.
type Index struct {
	key     *keyring.DetectionKey
	entries map[[32]byte][]secret.FingerprintMatch
	lengths map[int]bool
	storeID string
	size    int
	digest  [32]byte
	// filter is a bitmap of fingerprints' leading bits, small enough to stay
	// in cache: most candidates a scanner hashes are not managed, and the
	// bitmap turns them away without a probe of the large entries map (a
	// cache miss each).
	filter     []uint64
	filterBits uint
}

// filterFor sizes the bitmap at about 32 bits per entry (a false positive
// rate near 3 %), between 4 Ki and 64 Mi bits.
func filterBitsFor(n int) uint {
	bits := uint(12)
	for bits < 26 && 1<<bits < 32*n {
		bits++
	}
	return bits
}

func (ix *Index) filterSlot(fp *[32]byte) (word int, mask uint64) {
	v := binary.BigEndian.Uint64(fp[:8]) >> (64 - ix.filterBits)
	return int(v / 64), 1 << (v % 64)
}

// Read decodes and validates an exported index. Malformed input is an error
// wrapping secret.ErrInvalidArgument that never quotes the file's contents.
func Read(r io.Reader) (*Index, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read fingerprint index: %w", err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%w: fingerprint index is larger than %d bytes", secret.ErrTooLarge, MaxFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: not a passman fingerprint index (%s)", secret.ErrInvalidArgument, jsonProblem(err))
	}
	if f.Format != FormatVersion {
		return nil, fmt.Errorf("%w: fingerprint index format %d, want %d", secret.ErrInvalidArgument, f.Format, FormatVersion)
	}
	key, err := keyring.DetectionKeyFromBytes(f.DetectionKey)
	if err != nil {
		return nil, fmt.Errorf("fingerprint index: %w", err)
	}
	ix := &Index{key: key, entries: make(map[[32]byte][]secret.FingerprintMatch, len(f.Entries)), lengths: map[int]bool{}, storeID: f.StoreID, digest: sha256.Sum256(b)}
	ix.filterBits = filterBitsFor(len(f.Entries))
	ix.filter = make([]uint64, (1<<ix.filterBits)/64)
	for i, e := range f.Entries {
		var fp [32]byte
		if n, err := hex.Decode(fp[:], []byte(e.Fingerprint)); err != nil || n != 32 || len(e.Fingerprint) != 64 {
			return nil, fmt.Errorf("%w: fingerprint index entry %d: fingerprint is not 64 hex characters", secret.ErrInvalidArgument, i+1)
		}
		if err := secret.ValidatePath(e.Path); err != nil {
			return nil, fmt.Errorf("fingerprint index entry %d: %w", i+1, err)
		}
		if e.Version < 1 || e.Length < 1 || e.Length > secret.MaxValueSize {
			return nil, fmt.Errorf("%w: fingerprint index entry %d: version or length out of range", secret.ErrInvalidArgument, i+1)
		}
		w, m := ix.filterSlot(&fp)
		ix.filter[w] |= m
		ix.entries[fp] = append(ix.entries[fp], secret.FingerprintMatch{Path: e.Path, Version: e.Version, Stages: e.Stages, State: e.State})
		ix.lengths[e.Length] = true
		ix.size++
	}
	return ix, nil
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s has the wrong type", te.Field)
	}
	return "malformed"
}

// Lookup returns the managed versions whose value is value.
func (ix *Index) Lookup(value []byte) []secret.FingerprintMatch {
	if !ix.lengths[len(value)] {
		return nil
	}
	var fp [32]byte
	copy(fp[:], ix.key.Sum(value))
	if w, m := ix.filterSlot(&fp); ix.filter[w]&m == 0 {
		return nil
	}
	return ix.entries[fp]
}

// HasLength reports whether some managed value is n bytes long, so a
// scanner can skip candidates of other lengths without hashing them.
func (ix *Index) HasLength(n int) bool { return ix.lengths[n] }

// Lengths returns the distinct value lengths present.
func (ix *Index) Lengths() []int {
	out := make([]int, 0, len(ix.lengths))
	for n := range ix.lengths {
		out = append(out, n)
	}
	return out
}

// Len is the number of indexed versions.
func (ix *Index) Len() int { return ix.size }

// Digest identifies the index's content: results computed with one index
// (a scanner's cache) are valid for another with the same digest.
func (ix *Index) Digest() string { return hex.EncodeToString(ix.digest[:]) }

// StoreID names the store the index was exported from.
func (ix *Index) StoreID() string { return ix.storeID }
