package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Outcome says how an audited operation ended.
type Outcome string

// The outcomes. Every entry has exactly one of them.
const (
	OutcomeSuccess Outcome = "success"
	OutcomeFailure Outcome = "failure"
	OutcomeDenied  Outcome = "denied"
)

func (o Outcome) valid() bool {
	return o == OutcomeSuccess || o == OutcomeFailure || o == OutcomeDenied
}

// MaxEntrySize is the largest encoded entry, in bytes without the newline,
// that Append accepts. It bounds what a reader ever has to buffer.
const MaxEntrySize = 64 << 10

// maxLine is the longest line readers accept. Readers allow a little more
// than writers produce so that a later, slightly larger MaxEntrySize does not
// make older readers report a valid log as malformed.
const maxLine = MaxEntrySize + 4<<10

// genesisHash is the prev_hash of entry 1.
const genesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Entry is one line of the log. The JSON field names and order are a stable
// public format: changing either changes every hash.
type Entry struct {
	// Seq numbers entries from 1 without gaps. Append sets it.
	Seq uint64 `json:"seq"`
	// Time is when the entry was appended, in UTC. Append sets it from
	// Options.Now if it is zero and converts it to UTC otherwise.
	Time time.Time `json:"time"`
	// RequestID ties the entry to the request that caused it.
	RequestID string `json:"request_id"`
	// Actor is the authenticated identity that performed the operation.
	Actor string `json:"actor"`
	// Action names the operation, such as "secret.put".
	Action string `json:"action"`
	// Path is the secret the operation concerned, if any.
	Path string `json:"path,omitempty"`
	// Version is the secret version the operation concerned, if any.
	Version int `json:"version,omitempty"`
	// Outcome says how the operation ended.
	Outcome Outcome `json:"outcome"`
	// ErrorClass is secret.Class of the operation's error, if any.
	ErrorClass string `json:"error_class,omitempty"`
	// Fingerprint is a keyed HMAC of a value, never the value itself, so the
	// log can show that two writes stored the same value without revealing it.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Details holds extra facts about the operation, such as the versions a
	// multi-version change touched.
	Details map[string]string `json:"details,omitempty"`
	// Decision is the policy decision that allowed or denied the operation.
	Decision *Decision `json:"decision,omitempty"`
	// PrevHash is the Hash of the previous entry, genesis zeros for entry 1.
	// Append sets it.
	PrevHash string `json:"prev_hash"`
	// Hash is the lowercase hex SHA-256 of the entry's line with Hash empty.
	// Append sets it. It must stay the last field: see sealLine.
	Hash string `json:"hash"`
}

// Decision records an authorization decision: whether the policy allowed the
// operation, why, and which revision of the policy set decided.
type Decision struct {
	Allow    bool     `json:"allow"`
	Reasons  []string `json:"reasons,omitempty"`
	Revision string   `json:"revision"`
}

// Head identifies the last entry of a log: the point a caller records in the
// store and later hands to Verify as the anchor. The zero Head is an empty
// log.
type Head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// emptyHashTail ends every encoding of an Entry with an empty Hash: Hash is
// the last field and has no omitempty.
const emptyHashTail = `"hash":""}`

// encodeUnsealed returns the bytes that are hashed: the canonical encoding of
// e with Hash empty.
func encodeUnsealed(e *Entry) ([]byte, error) {
	c := *e
	c.Hash = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(b, []byte(emptyHashTail)) {
		// Only reachable if someone reorders the struct fields.
		return nil, errors.New("encoded entry does not end with the hash field")
	}
	return b, nil
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// seal sets e.Hash and appends the line to write, newline included, to
// dst. The line is the hashed bytes with the hash spliced into the empty
// hash field, so the hash provably covers every other byte of the line.
func seal(dst []byte, e *Entry) ([]byte, error) {
	b, err := encodeUnsealed(e)
	if err != nil {
		return dst, err
	}
	e.Hash = hashHex(b)
	return appendLine(dst, b, e.Hash), nil
}

func sealLine(unsealed []byte, hash string) []byte {
	return appendLine(make([]byte, 0, len(unsealed)+len(hash)+1), unsealed, hash)
}

// appendLine appends the sealed line of unsealed and hash to dst.
func appendLine(dst, unsealed []byte, hash string) []byte {
	cut := len(unsealed) - len(`"}`)
	dst = append(dst, unsealed[:cut]...)
	dst = append(dst, hash...)
	dst = append(dst, `"}`...)
	return append(dst, '\n')
}

// decodeLine parses one line (without its newline) strictly. A non-empty
// reason says why the line is not an entry this package could have written.
func decodeLine(line []byte) (e Entry, reason string) {
	if len(line) == 0 {
		return Entry{}, "malformed entry: empty line"
	}
	if line[0] != '{' {
		return Entry{}, "malformed entry: not a JSON object"
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	// An added field is an edit, not an extension.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Entry{}, "malformed entry: " + err.Error()
	}
	if dec.InputOffset() != int64(len(line)) {
		return Entry{}, "malformed entry: data after the JSON object"
	}
	if !isHashHex(e.Hash) {
		return Entry{}, "malformed entry: hash is not 64 lowercase hex digits"
	}
	if e.Time.Location() != time.UTC {
		return Entry{}, "malformed entry: time is not UTC"
	}
	if !e.Outcome.valid() {
		return Entry{}, fmt.Sprintf("malformed entry: unknown outcome %q", e.Outcome)
	}
	return e, ""
}

// checkSeal reports whether line is exactly what seal writes for e: the hash
// must recompute, and no other encoding of the same values is accepted.
func checkSeal(line []byte, e *Entry) string {
	b, err := encodeUnsealed(e)
	if err != nil {
		return "malformed entry: " + err.Error()
	}
	if hashHex(b) != e.Hash {
		return "hash mismatch (entry edited)"
	}
	want := sealLine(b, e.Hash)
	if !bytes.Equal(line, want[:len(want)-1]) {
		return "non-canonical encoding (entry edited)"
	}
	return ""
}

func isHashHex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// sanitize replaces invalid UTF-8 in e's strings with U+FFFD. encoding/json
// would do the same when writing, but then the decoded entry would re-encode
// differently and its own hash would not verify.
func sanitize(e *Entry) error {
	for _, s := range []*string{&e.RequestID, &e.Actor, &e.Action, &e.Path, &e.ErrorClass, &e.Fingerprint} {
		*s = strings.ToValidUTF8(*s, "\uFFFD")
	}
	if e.Decision != nil {
		d := *e.Decision
		d.Revision = strings.ToValidUTF8(d.Revision, "\uFFFD")
		d.Reasons = make([]string, len(e.Decision.Reasons))
		for i, r := range e.Decision.Reasons {
			d.Reasons[i] = strings.ToValidUTF8(r, "\uFFFD")
		}
		if len(d.Reasons) == 0 {
			d.Reasons = nil
		}
		e.Decision = &d
	}
	if len(e.Details) == 0 {
		e.Details = nil
		return nil
	}
	// Copy even when nothing changes: the returned Entry must not share a
	// map the caller may go on modifying.
	d := make(map[string]string, len(e.Details))
	for k, v := range e.Details {
		d[strings.ToValidUTF8(k, "\uFFFD")] = strings.ToValidUTF8(v, "\uFFFD")
	}
	if len(d) != len(e.Details) {
		return errors.New("details keys collide after replacing invalid UTF-8")
	}
	e.Details = d
	return nil
}
