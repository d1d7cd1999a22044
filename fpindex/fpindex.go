// Package fpindex is the exported fingerprint index: what a leak scanner
// needs to recognise passman's own secrets in scanned text without the
// store or the master key — the detection key and the keyed fingerprints
// of managed values.
//
// # Forms
//
// The shareable form (File.Prefixes) is what `passman fingerprints export`
// writes and GET /v1/fingerprints/export serves: for each exported value
// only the first PrefixBits bits of its fingerprint. A scanner hashes
// candidate tokens with the detection key; a prefix hit is a candidate,
// which the store confirms (Confirmer; POST /v1/fingerprints/confirm),
// answering only for secrets the caller may read. Nobody can confirm a
// guess offline with the file: each 24-bit prefix is shared by one in 16
// million of all possible guesses, so a dictionary of 2^30 guesses leaves
// 64 candidates per prefix, and the only oracle that tells them apart is
// the store, authorized, rate-limited and audited.
//
// The local form (File.Entries) holds full fingerprints with the path,
// version and stages of each: core.Local builds it for a scan of its own
// store in process, and the index confirms its own candidates. The server
// never serves it and the CLI never writes it.
//
// Both forms are scoped (a path prefix, and only secrets the exporter may
// read), leave out values that fail the export rule (see Exportable) and
// count them in Withheld, and tie no length to a fingerprint: they carry
// only the set of lengths present (Lengths), which a scanner needs to stay
// fast — it hashes only tokens of those lengths, 4 to 24 times fewer than
// every length from 16 up would be (measured on the scanner's benchmark
// text). Without a way to confirm a guess offline, a length narrows
// nothing that matters.
//
// The file still holds the detection key: treat it like a CI secret (a
// masked secret or a short-lived artifact, never committed), and re-export
// after rotations (it goes stale, it does not go wrong: a stale file misses
// new versions).
package fpindex

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
)

// FormatVersion is the version of the file format this package writes and
// reads. Version 1 (full fingerprints and every value's length, for every
// secret of the store) is refused: it is what this version retires.
const FormatVersion = 2

// PrefixBits is how much of each fingerprint the shareable form keeps. At
// 24 bits a scan with a 1,000-value index sees a false candidate once in
// 16,000 hashed tokens (0.6 % at 100,000 values), few enough to confirm in
// batches, while a guess cannot be confirmed (see the package doc).
const PrefixBits = 24

// MaxFileSize bounds what Read accepts.
const MaxFileSize = 512 << 20

// MaxConfirm bounds the fingerprints of one confirmation request.
const MaxConfirm = 1000

// File is the exported index as stored (JSON).
type File struct {
	Format    int       `json:"format"`
	StoreID   string    `json:"store_id"`
	CreatedAt time.Time `json:"created_at"`
	// Prefix is the path prefix exported ("" for the whole store).
	Prefix       string `json:"prefix,omitempty"`
	DetectionKey []byte `json:"detection_key"` // base64 in JSON
	// Lengths are the distinct lengths of the exported values, ascending.
	Lengths []int `json:"lengths,omitempty"`
	// Exported counts the fingerprints exported; Withheld those left out
	// by the export rule.
	Exported int `json:"exported"`
	Withheld int `json:"withheld"`
	// PrefixBits and Prefixes (lowercase hex, PrefixBits/4 characters,
	// sorted and distinct) make the shareable form.
	PrefixBits int      `json:"prefix_bits,omitempty"`
	Prefixes   []string `json:"prefixes,omitempty"`
	// Entries make the local form.
	Entries []Entry `json:"entries,omitempty"`
}

// Entry is one managed version in the local form.
type Entry struct {
	Fingerprint string              `json:"fingerprint"` // lowercase hex HMAC-SHA256
	Path        string              `json:"path"`
	Version     int                 `json:"version"`
	Stages      []secret.Stage      `json:"stages,omitempty"`
	State       secret.VersionState `json:"state"`
}

// Builder assembles a File from a store's values, applying the export
// rule. It never keeps a value.
type Builder struct {
	f       File
	local   bool
	lengths map[int]bool
}

// NewBuilder starts an export of the store storeID under prefix: the local
// form when local, else the shareable one.
func NewBuilder(storeID, prefix string, key *keyring.DetectionKey, now time.Time, local bool) *Builder {
	b := &Builder{f: File{StoreID: storeID, CreatedAt: now.UTC(), Prefix: prefix, DetectionKey: key.Bytes()}, local: local, lengths: map[int]bool{}}
	if !local {
		b.f.PrefixBits = PrefixBits
	}
	return b
}

// Add exports value (whose fingerprint is fp, lowercase hex) as version m,
// or counts it as withheld when it fails the export rule.
func (b *Builder) Add(value []byte, fp string, m secret.FingerprintMatch) {
	if !Exportable(value) {
		b.f.Withheld++
		return
	}
	b.f.Exported++
	b.lengths[len(value)] = true
	if b.local {
		b.f.Entries = append(b.f.Entries, Entry{Fingerprint: fp, Path: m.Path, Version: m.Version, Stages: m.Stages, State: m.State})
		return
	}
	b.f.Prefixes = append(b.f.Prefixes, fp[:PrefixBits/4])
}

// File returns the export.
func (b *Builder) File() File {
	f := b.f
	f.Lengths = slices.Sorted(maps.Keys(b.lengths))
	slices.Sort(f.Prefixes)
	f.Prefixes = slices.Compact(f.Prefixes)
	return f
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

// Confirmation answers a batch of candidate fingerprints.
type Confirmation struct {
	StoreID string `json:"store_id"`
	// Matches maps each confirmed fingerprint to the managed versions the
	// caller may read whose value has it; any other is absent.
	Matches map[string][]secret.FingerprintMatch `json:"matches"`
}

// Confirmer confirms candidate fingerprints (at most MaxConfirm at once):
// core.Local and client.Client ask the store, a local-form Index answers
// itself.
type Confirmer interface {
	ConfirmFingerprints(ctx context.Context, fps []string) (Confirmation, error)
}

// Index answers "may this value be a managed secret?" in memory.
type Index struct {
	key      *keyring.DetectionKey
	storeID  string
	digest   [32]byte
	size     int
	withheld int
	lengths  []int
	// filter is a bitmap over fingerprints' leading filterBits bits. In
	// the shareable form it is the whole index (a hit is a candidate);
	// in the local form, sized at about 32 bits per entry, it stays in
	// cache and turns most tokens away before a probe of entries (a cache
	// miss each).
	filter     []uint64
	filterBits uint
	entries    map[[32]byte][]secret.FingerprintMatch // local form only
}

var _ Confirmer = (*Index)(nil)

// filterBitsFor sizes the local form's bitmap at about 32 bits per entry
// (a false positive rate near 3 %), between 4 Ki and 64 Mi bits.
func filterBitsFor(n int) uint {
	b := uint(12)
	for b < 26 && 1<<b < 32*n {
		b++
	}
	return b
}

func (ix *Index) filterSlot(fp []byte) (word int, mask uint64) {
	v := binary.BigEndian.Uint64(fp[:8]) >> (64 - ix.filterBits)
	return int(v / 64), 1 << (v % 64)
}

func (ix *Index) setFilter(fp []byte) {
	w, m := ix.filterSlot(fp)
	ix.filter[w] |= m
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
	// The version first, so that a file of another version gets a clear
	// error rather than one about fields this version does not know.
	var head struct {
		Format int `json:"format"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%w: not a passman fingerprint index (%s)", secret.ErrInvalidArgument, jsonProblem(err))
	}
	switch {
	case head.Format == 1:
		return nil, fmt.Errorf("%w: fingerprint index format 1 (full fingerprints of every secret) is no longer read; export a new one with 'passman fingerprints export'", secret.ErrInvalidArgument)
	case head.Format != FormatVersion:
		return nil, fmt.Errorf("%w: fingerprint index format %d, want %d", secret.ErrInvalidArgument, head.Format, FormatVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: not a passman fingerprint index (%s)", secret.ErrInvalidArgument, jsonProblem(err))
	}
	key, err := keyring.DetectionKeyFromBytes(f.DetectionKey)
	if err != nil {
		return nil, fmt.Errorf("fingerprint index: %w", err)
	}
	if err := secret.ValidatePrefix(f.Prefix); err != nil {
		return nil, fmt.Errorf("fingerprint index: %w", err)
	}
	if f.Exported < 0 || f.Withheld < 0 || len(f.Lengths) == 0 && (len(f.Prefixes) > 0 || len(f.Entries) > 0) {
		return nil, fmt.Errorf("%w: fingerprint index: counts or lengths out of range", secret.ErrInvalidArgument)
	}
	for _, n := range f.Lengths {
		if n < MinValueLength || n > secret.MaxValueSize {
			return nil, fmt.Errorf("%w: fingerprint index: a length is out of range", secret.ErrInvalidArgument)
		}
	}
	ix := &Index{key: key, storeID: f.StoreID, digest: sha256.Sum256(b), withheld: f.Withheld, lengths: slices.Compact(slices.Sorted(slices.Values(f.Lengths)))}
	if f.PrefixBits != 0 {
		err = ix.readPrefixes(f)
	} else {
		err = ix.readEntries(f)
	}
	if err != nil {
		return nil, err
	}
	return ix, nil
}

func (ix *Index) readPrefixes(f File) error {
	if f.PrefixBits < 16 || f.PrefixBits > 24 || f.PrefixBits%4 != 0 || len(f.Entries) > 0 {
		return fmt.Errorf("%w: fingerprint index: prefix_bits must be 16, 20 or 24, without entries", secret.ErrInvalidArgument)
	}
	ix.filterBits = uint(f.PrefixBits)
	ix.filter = make([]uint64, (1<<ix.filterBits)/64)
	var fp [8]byte
	for i, p := range f.Prefixes {
		if len(p) != f.PrefixBits/4 {
			return fmt.Errorf("%w: fingerprint index prefix %d is not %d hex characters", secret.ErrInvalidArgument, i+1, f.PrefixBits/4)
		}
		// Pad to whole bytes: 20 bits are five hex digits.
		h := p + "00000000"[:2*((len(p)+1)/2)-len(p)]
		clear(fp[:])
		if _, err := hex.Decode(fp[:], []byte(h)); err != nil || !isLowerHex(p) {
			return fmt.Errorf("%w: fingerprint index prefix %d is not %d hex characters", secret.ErrInvalidArgument, i+1, f.PrefixBits/4)
		}
		ix.setFilter(fp[:])
		ix.size++
	}
	return nil
}

func (ix *Index) readEntries(f File) error {
	if len(f.Prefixes) > 0 {
		return fmt.Errorf("%w: fingerprint index: prefixes without prefix_bits", secret.ErrInvalidArgument)
	}
	ix.entries = make(map[[32]byte][]secret.FingerprintMatch, len(f.Entries))
	ix.filterBits = filterBitsFor(len(f.Entries))
	ix.filter = make([]uint64, (1<<ix.filterBits)/64)
	for i, e := range f.Entries {
		var fp [32]byte
		if n, err := hex.Decode(fp[:], []byte(e.Fingerprint)); err != nil || n != 32 || len(e.Fingerprint) != 64 || !isLowerHex(e.Fingerprint) {
			return fmt.Errorf("%w: fingerprint index entry %d: fingerprint is not 64 hex characters", secret.ErrInvalidArgument, i+1)
		}
		if err := secret.ValidatePath(e.Path); err != nil {
			return fmt.Errorf("fingerprint index entry %d: %w", i+1, err)
		}
		if e.Version < 1 {
			return fmt.Errorf("%w: fingerprint index entry %d: version out of range", secret.ErrInvalidArgument, i+1)
		}
		ix.setFilter(fp[:])
		ix.entries[fp] = append(ix.entries[fp], secret.FingerprintMatch{Path: e.Path, Version: e.Version, Stages: e.Stages, State: e.State})
		ix.size++
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
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

// Candidate fingerprints value into fp and reports whether it may be a
// managed value: in the local form only if it is one, in the shareable
// form if its fingerprint's prefix is exported (then the store confirms).
// It is safe for concurrent use with distinct fp buffers.
func (ix *Index) Candidate(fp *[32]byte, value []byte) bool {
	ix.key.AppendSum(fp[:0], value)
	if w, m := ix.filterSlot(fp[:]); ix.filter[w]&m == 0 {
		return false
	}
	if ix.entries == nil {
		return true
	}
	_, ok := ix.entries[*fp]
	return ok
}

// Lengths returns the distinct lengths of the exported values, ascending.
func (ix *Index) Lengths() []int { return slices.Clone(ix.lengths) }

// Local reports whether the index is in the local form, which confirms
// its own candidates.
func (ix *Index) Local() bool { return ix.entries != nil }

// ConfirmFingerprints answers from the index itself in the local form; the
// shareable form cannot (its candidates need the store) and says so.
func (ix *Index) ConfirmFingerprints(_ context.Context, fps []string) (Confirmation, error) {
	if ix.entries == nil {
		return Confirmation{}, fmt.Errorf("%w: the fingerprint index holds fingerprint prefixes only; its candidates are confirmed by the store", secret.ErrPrecondition)
	}
	c := Confirmation{StoreID: ix.storeID, Matches: map[string][]secret.FingerprintMatch{}}
	for _, s := range fps {
		var fp [32]byte
		if n, err := hex.Decode(fp[:], []byte(s)); err != nil || n != 32 {
			return Confirmation{}, fmt.Errorf("%w: a fingerprint is 64 hex characters", secret.ErrInvalidArgument)
		}
		if m := ix.entries[fp]; len(m) > 0 {
			c.Matches[s] = slices.Clone(m)
		}
	}
	return c, nil
}

// Lookup returns the managed versions whose value is value (local form;
// nil in the shareable form, which knows no versions).
func (ix *Index) Lookup(value []byte) []secret.FingerprintMatch {
	var fp [32]byte
	if !ix.Candidate(&fp, value) || ix.entries == nil {
		return nil
	}
	return ix.entries[fp]
}

// Len is the number of fingerprints (local form) or distinct prefixes
// (shareable form) indexed.
func (ix *Index) Len() int { return ix.size }

// Withheld is how many fingerprints the export left out as too weak.
func (ix *Index) Withheld() int { return ix.withheld }

// Digest identifies the index's content: results computed with one index
// (a scanner's cache) are valid for another with the same digest.
func (ix *Index) Digest() string { return hex.EncodeToString(ix.digest[:]) }

// StoreID names the store the index was exported from.
func (ix *Index) StoreID() string { return ix.storeID }
