package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/passman-dev/passman/secret"
)

// Report is the result of verifying a log.
type Report struct {
	// Entries is the number of valid entries before the first break.
	Entries uint64 `json:"entries"`
	// Head is the last valid entry in the file.
	Head Head `json:"head"`
	// Anchor is the head recorded in the store, as passed to Verify.
	Anchor Head `json:"anchor"`
	// Unconfirmed counts valid entries after the anchor: entries written
	// just before a crash, before the store recorded them. They are not an
	// error; the caller reconciles them.
	Unconfirmed uint64 `json:"unconfirmed"`
	// OK is true when the whole file verifies and agrees with the anchor.
	OK bool `json:"ok"`
	// Broken is the first problem found, nil when OK.
	Broken *Break `json:"broken,omitempty"`
	// Signature is what became of the anchor's signature. Verify leaves it
	// empty: the caller that read the checkpoint, and holds the key or not,
	// fills it in with SignedBy, SignedAt and any Warnings.
	Signature Signature `json:"signature,omitempty"`
	// SignedBy is the ID of the master key the checkpoint was signed with.
	SignedBy string `json:"signed_by,omitempty"`
	// SignedAt is when the checkpoint was recorded, as it says.
	SignedAt time.Time `json:"signed_at,omitzero"`
	// Warnings are findings that do not fail verification, for people.
	Warnings []string `json:"warnings,omitempty"`
}

// Signature says whether a checkpoint's signature was checked, and how it
// went.
type Signature string

// The signature outcomes.
const (
	// SignatureValid: checked with the key it was signed with.
	SignatureValid Signature = "valid"
	// SignatureUnchecked: signed, but verified without the master key.
	SignatureUnchecked Signature = "unchecked"
	// SignatureUnsigned: the checkpoint has no signature (recorded before
	// checkpoints were signed), or the store recorded none. A warning.
	SignatureUnsigned Signature = "unsigned"
	// SignatureInvalid: the signature does not verify; the report is
	// broken.
	SignatureInvalid Signature = "invalid"
)

// Break locates the first problem in a log.
type Break struct {
	// Seq is the seq the entry at Line should have had; for a bad
	// checkpoint, the seq it names.
	Seq uint64 `json:"seq"`
	// Line is the 1-based line number in the file; 0 when the problem is
	// the recorded checkpoint, not a line.
	Line int `json:"line"`
	// Reason says what is wrong, for people; it is not a stable format.
	Reason string `json:"reason"`
}

// Verify checks the log at path; see VerifyReader. The error is non-nil only
// when the file cannot be read or the anchor is invalid: a broken chain is a
// Report with OK false.
func Verify(ctx context.Context, path string, anchor Head) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, fmt.Errorf("verify audit log: %w", err)
	}
	defer f.Close() // read-only: a close error loses nothing
	return VerifyReader(ctx, f, anchor)
}

// VerifyReader checks a log read from r against anchor, the head the store
// recorded (the zero Head if it recorded none). It checks each line in turn —
// well-formed with no unknown fields, seq one more than the previous (1
// first), prev_hash the previous hash, hash recomputes, encoding canonical —
// and that the entry at anchor.Seq has anchor.Hash, and it stops at the first
// problem. A file that ends before anchor.Seq was truncated. A final line
// without a newline is a torn write that Open would have removed; here it is
// reported as malformed, so run Verify on a log that is being appended to only
// if a false alarm about the final line is acceptable.
//
// The error is non-nil only when r fails, ctx ends or the anchor is invalid
// (the error then wraps secret.ErrInvalidArgument).
func VerifyReader(ctx context.Context, r io.Reader, anchor Head) (Report, error) {
	if err := checkAnchor(anchor); err != nil {
		return Report{}, err
	}
	rep := Report{Anchor: anchor}
	lr := newLineReader(r)
	var c chain
	for rep.Broken == nil {
		if lr.line%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return Report{}, fmt.Errorf("verify audit log: %w", err)
			}
		}
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			if c.head.Seq < anchor.Seq {
				rep.Broken = &Break{
					Seq:    c.head.Seq + 1,
					Line:   lr.line + 1,
					Reason: fmt.Sprintf("log ends at seq %d but the store records head seq %d (truncated)", c.head.Seq, anchor.Seq),
				}
			}
			break
		}
		var reason string
		var e Entry
		switch {
		case errors.Is(err, errTorn):
			reason = "malformed entry: torn final line (no trailing newline)"
		case errors.Is(err, errLineTooLong):
			reason = fmt.Sprintf("malformed entry: line exceeds %d bytes", maxLine)
		case err != nil:
			return Report{}, fmt.Errorf("verify audit log: line %d: %w", lr.line+1, err)
		default:
			e, reason = c.add(line)
		}
		switch {
		case reason != "":
			rep.Broken = &Break{Seq: c.head.Seq + 1, Line: lr.line, Reason: reason}
		case e.Seq == anchor.Seq && e.Hash != anchor.Hash:
			// Checked here rather than at the end so that the report names
			// the first problem in file order.
			rep.Broken = &Break{Seq: e.Seq, Line: lr.line, Reason: fmt.Sprintf("entry %d does not match the head recorded in the store", e.Seq)}
		}
	}
	rep.Head = c.head
	rep.Entries = c.head.Seq
	if c.head.Seq > anchor.Seq {
		rep.Unconfirmed = c.head.Seq - anchor.Seq
	}
	rep.OK = rep.Broken == nil
	return rep, nil
}

func checkAnchor(a Head) error {
	switch {
	case a.Seq == 0 && a.Hash != "":
		return fmt.Errorf("verify audit log: %w: anchor has a hash but seq 0", secret.ErrInvalidArgument)
	case a.Seq > 0 && !isHashHex(a.Hash):
		return fmt.Errorf("verify audit log: %w: anchor hash is not 64 lowercase hex digits", secret.ErrInvalidArgument)
	}
	return nil
}

// chain checks that lines form a chain from entry 1.
type chain struct {
	head Head // last valid entry
}

// add checks the next line and, if it is valid, makes it the head. The
// reason is empty for a valid entry.
func (c *chain) add(line []byte) (Entry, string) {
	e, reason := decodeLine(line)
	if reason != "" {
		return Entry{}, reason
	}
	if want := c.head.Seq + 1; e.Seq != want {
		return Entry{}, fmt.Sprintf("sequence gap: want %d, got %d", want, e.Seq)
	}
	prev := c.head.Hash
	if c.head.Seq == 0 {
		prev = genesisHash
	}
	if e.PrevHash != prev {
		return Entry{}, "prev_hash mismatch (entry deleted or reordered)"
	}
	if reason := checkSeal(line, &e); reason != "" {
		return Entry{}, reason
	}
	c.head = Head{Seq: e.Seq, Hash: e.Hash}
	return e, ""
}

var (
	errTorn        = errors.New("final line has no newline")
	errLineTooLong = errors.New("line too long")
)

// lineReader reads lines of bounded length, so a hostile file costs at most
// one maxLine buffer.
type lineReader struct {
	r    *bufio.Reader
	line int // lines returned so far, including a torn or overlong one
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, maxLine+1)}
}

// next returns the next line without its newline, valid until the next call.
// It returns io.EOF at a clean end, errTorn for a final line without a
// newline, errLineTooLong for a line over maxLine bytes, or r's error.
func (lr *lineReader) next() ([]byte, error) {
	b, err := lr.r.ReadSlice('\n')
	switch {
	case err == nil:
		lr.line++
		return b[:len(b)-1], nil
	case errors.Is(err, bufio.ErrBufferFull):
		lr.line++
		return nil, errLineTooLong
	case errors.Is(err, io.EOF) && len(b) > 0:
		lr.line++
		return b, errTorn
	default:
		return nil, err
	}
}
