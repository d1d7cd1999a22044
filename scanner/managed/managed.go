// Package managed finds candidates for passman's own managed secrets in
// scanned text.
//
// A generated database password matches no regex rule, so the leak scanner
// recognises managed values another way: it fingerprints candidate tokens
// with the store's detection key and tests them against the exported
// fingerprint index (package fpindex). A hit is a candidate, which the
// scanner has the store confirm. Nothing is decrypted and no value is ever
// held or reported: a Match carries a position, a length and the token's
// fingerprint.
//
// # Candidate rules
//
// Generated values may contain symbols (!#$%&()*+,-./:;<=>?@[]^_{|}~), so
// splitting the text on every delimiter would cut them apart. Instead only
// the lengths present in the index matter. The text is divided into lines
// at '\n', and:
//
//  1. A candidate starts at a boundary: the start of the fragment or of a
//     line, or right after an opening delimiter — a separator (below), a
//     quote ' " `, or one of = : @ / ? & , ; ( [ { <. This covers bare
//     tokens, quoted strings, .env KEY=VALUE, YAML "key: VALUE", JSON string
//     values, URL userinfo (postgres://user:VALUE@host) and query strings
//     (?token=VALUE&x=1), and "Authorization: Bearer VALUE".
//  2. For every boundary p and every length L present in the index,
//     fragment[p:p+L] is a candidate if it contains no separator (so it
//     lies within one line) and the byte after it is the end of the
//     fragment or a closing delimiter: any opening delimiter or one of
//     ) ] } >.
//  3. Separators are the space and every ASCII control byte (0x00–0x1f,
//     0x7f): tab, CR and LF, but also NUL, so a value NUL-terminated inside
//     a binary file is found. A value never contains one.
//
// Every candidate is fingerprinted, so the cost is one HMAC per (boundary,
// length) pair that passes rules 2 and 3, and a near miss — one byte
// changed, another case, a prefix or suffix of a longer token, a substring
// — is never confirmed. The delimiter sets only bound that cost; correctness
// comes from the fingerprint.
//
// # Known limits
//
//   - Escaping is not undone: a value containing a quote or a backslash that
//     the file escapes (JSON "a\"b", YAML, shell) is not found, nor is a
//     percent-encoded value in a URL.
//   - A value glued to a byte outside the delimiter sets is missed:
//     "xVALUE", "VALUE!", and "VALUE." at the end of a sentence ('.' is not a
//     closing delimiter).
//   - A value containing a space or a control byte (a human-chosen
//     passphrase, a PEM block) is never found: rule 3 cuts it.
//   - A value split across lines (a wrapped PEM block, a folded YAML scalar)
//     is not found.
package managed

import "slices"

// Index is what a Matcher needs from an exported fingerprint index;
// *fpindex.Index satisfies it. Implementations must be safe for concurrent
// use if Find is called concurrently.
type Index interface {
	// Candidate fingerprints value into fp and reports whether it may be
	// a managed value (the caller confirms it).
	Candidate(fp *[32]byte, value []byte) bool
	// Lengths returns the distinct value lengths worth hashing, in any
	// order.
	Lengths() []int
}

// Match is one candidate for a managed secret found in a fragment. It never
// holds the value.
type Match struct {
	// Line and Column locate the token's first byte; both are 1-based and
	// Column counts bytes, not runes.
	Line, Column int
	// Length is the token's length in bytes.
	Length int
	// Fingerprint is the token's keyed fingerprint, for confirmation.
	Fingerprint [32]byte
}

// Matcher finds candidate managed secrets in text. It is immutable once
// built, so one Matcher may serve concurrent Find calls over a
// concurrency-safe Index.
type Matcher struct {
	ix      Index
	lengths []int // distinct, positive, ascending
}

// New returns a Matcher over ix, which must not be nil. It reads ix's
// lengths once; an index whose contents change later needs a new Matcher.
func New(ix Index) *Matcher {
	var lengths []int
	for _, n := range ix.Lengths() {
		if n > 0 {
			lengths = append(lengths, n)
		}
	}
	slices.Sort(lengths)
	return &Matcher{ix: ix, lengths: slices.Compact(lengths)}
}

// Find returns the candidates in fragment, in order of position (then
// length). Each (position, length) is examined once. Find never panics on
// any input, including binary and invalid UTF-8.
func (m *Matcher) Find(fragment []byte) []Match {
	var out []Match
	var fp *[32]byte // one buffer per call, allocated at the first hash
	n := len(fragment)
	line, lineStart := 1, 0
	// runEnd is the index of the first separator at or after the current
	// boundary (or n); no candidate can reach past it. It is recomputed only
	// once the walk passes it, so the text is scanned for separators once.
	runEnd := -1
	for p := 0; p < n; p++ {
		if p > 0 {
			c := fragment[p-1]
			if c == '\n' {
				line++
				lineStart = p
			}
			if classes[c]&opens == 0 {
				continue
			}
		}
		if p > runEnd {
			runEnd = nextSeparator(fragment, p)
		}
		for _, l := range m.lengths {
			e := p + l
			if e > runEnd {
				break // lengths ascend: every longer one crosses a separator too
			}
			if e < n && classes[fragment[e]]&closes == 0 {
				continue
			}
			if fp == nil {
				fp = new([32]byte)
			}
			if m.ix.Candidate(fp, fragment[p:e]) {
				out = append(out, Match{Line: line, Column: p - lineStart + 1, Length: l, Fingerprint: *fp})
			}
		}
	}
	return out
}

// Byte classes. The delimiter sets live here and only here.
const (
	separator = 1 << iota // never inside a value; opens and closes a token
	opens                 // a candidate may start right after it
	closes                // a candidate may end right before it
)

const (
	// openDelims are the bytes after which a candidate may start, besides
	// separators: quotes, and the punctuation that precedes a value in
	// KEY=VALUE, key: value, JSON, URLs and argument lists.
	openDelims = "'\"`=:@/?&,;([{<"
	// closeOnlyDelims end a candidate without starting one: the closers of
	// the brackets in openDelims.
	closeOnlyDelims = ")]}>"
)

// classes maps each byte to its class bits. It is computed once and never
// written afterwards.
var classes = func() (t [256]uint8) {
	for c := range 0x20 {
		t[c] = separator | opens | closes
	}
	t[' '] = separator | opens | closes
	t[0x7f] = separator | opens | closes
	for i := range len(openDelims) {
		t[openDelims[i]] |= opens | closes
	}
	for i := range len(closeOnlyDelims) {
		t[closeOnlyDelims[i]] |= closes
	}
	return t
}()

// nextSeparator returns the index of the first separator in b at or after
// from, or len(b).
func nextSeparator(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if classes[b[i]]&separator != 0 {
			return i
		}
	}
	return len(b)
}
