package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/passman-dev/passman/secret"
)

// Checkpoint is a Head as the caller records it in its store, the anchor
// for Verify, optionally signed: an HMAC-SHA256 over the head, the time it
// was recorded and the ID of the key it was signed with. The chain hash is
// unkeyed, so whoever can write both the log and the store could re-chain a
// doctored log and record its head; with a signed checkpoint they also need
// the key. An unsigned checkpoint (Time, KeyID and MAC empty) is what
// stores recorded before checkpoints were signed.
type Checkpoint struct {
	Head
	Time  time.Time `json:"time,omitzero"`
	KeyID string    `json:"key_id,omitempty"`
	// MAC is the lowercase hex HMAC-SHA256 of the checkpoint's message (see
	// mac), under a key derived for this purpose, never the key itself.
	MAC string `json:"mac,omitempty"`
}

// Limits on a recorded checkpoint: a well-formed one is under 300 bytes.
const (
	maxCheckpointSize = 1024
	maxKeyIDLen       = 64
)

// checkpointLabel starts every signed message, so a MAC over a checkpoint
// cannot be mistaken for one over anything else signed with the same key.
const checkpointLabel = "passman audit checkpoint v1\x00"

// Signed reports whether c carries a signature.
func (c Checkpoint) Signed() bool { return c.MAC != "" }

// SignCheckpoint returns h recorded at t, signed with key, which the caller
// derived from master key keyID. It fails only for an invalid head or key
// ID.
func SignCheckpoint(h Head, t time.Time, keyID string, key []byte) (Checkpoint, error) {
	c := Checkpoint{Head: h, Time: t.UTC(), KeyID: keyID}
	if err := c.check(); err != nil {
		return Checkpoint{}, err
	}
	c.MAC = hex.EncodeToString(c.mac(key))
	return c, nil
}

// CheckMAC reports whether c is signed and its MAC is right for key.
func (c Checkpoint) CheckMAC(key []byte) bool {
	got, err := hex.DecodeString(c.MAC)
	if err != nil || len(got) != sha256.Size || c.check() != nil {
		return false
	}
	return hmac.Equal(got, c.mac(key))
}

// mac computes the HMAC of a fixed-layout message, not of the JSON, so
// that no encoding variant of the record can change what was signed:
// label, seq (8 bytes), hash (32), Unix seconds (8) and nanoseconds (4),
// then the key ID's length (1) and bytes. c must have passed check.
func (c Checkpoint) mac(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	var buf [8 + sha256.Size + 8 + 4 + 1 + maxKeyIDLen]byte
	b := binary.BigEndian.AppendUint64(buf[:0], c.Seq)
	hash, _ := hex.DecodeString(c.Hash) // checked: 64 hex digits
	b = append(b, hash...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Time.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(c.Time.Nanosecond()))
	b = append(b, byte(len(c.KeyID)))
	b = append(b, c.KeyID...)
	m.Write([]byte(checkpointLabel))
	m.Write(b)
	return m.Sum(nil)
}

// check validates what a signature covers.
func (c Checkpoint) check() error {
	switch {
	case c.Seq == 0:
		return errors.New("a signed checkpoint needs seq 1 or more")
	case !isHashHex(c.Hash):
		return errors.New("hash is not 64 lowercase hex digits")
	case c.Time.IsZero():
		return errors.New("time is missing")
	case c.Time.UTC().Year() > 9999:
		// JSON cannot encode it: the record would not re-encode.
		return errors.New("time is after year 9999")
	case !validKeyID(c.KeyID):
		return fmt.Errorf("key id is not 1 to %d letters, digits, '-' or '_'", maxKeyIDLen)
	}
	return nil
}

func validKeyID(id string) bool {
	if id == "" || len(id) > maxKeyIDLen {
		return false
	}
	for _, r := range []byte(id) {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Marshal encodes c for the store.
func (c Checkpoint) Marshal() ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode audit checkpoint: %w", err)
	}
	return b, nil
}

// ParseCheckpoint decodes a recorded checkpoint: exactly one JSON object
// with no unknown fields, at most 1 KiB, holding either a Head alone (an
// unsigned checkpoint, or the zero Head) or a Head with every signature
// field. It checks the form only; CheckMAC checks the signature. Any error
// wraps secret.ErrCorrupt and never quotes the input.
func ParseCheckpoint(b []byte) (Checkpoint, error) {
	var c Checkpoint
	if err := parseCheckpoint(b, &c); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: recorded audit checkpoint: %v", secret.ErrCorrupt, err)
	}
	c.Time = c.Time.UTC()
	return c, nil
}

func parseCheckpoint(b []byte, c *Checkpoint) error {
	if len(b) > maxCheckpointSize {
		return fmt.Errorf("%d bytes, limit %d", len(b), maxCheckpointSize)
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return errors.New("not a checkpoint object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return errors.New("not a checkpoint object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the checkpoint object")
	}
	signed := !c.Time.IsZero() || c.KeyID != "" || c.MAC != ""
	switch {
	case !signed && c.Seq == 0:
		if c.Hash != "" {
			return errors.New("hash with seq 0")
		}
		return nil
	case !signed:
		if !isHashHex(c.Hash) {
			return errors.New("hash is not 64 lowercase hex digits")
		}
		return nil
	}
	if err := c.check(); err != nil {
		return err
	}
	if !isHashHex(c.MAC) {
		return errors.New("mac is not 64 lowercase hex digits")
	}
	return nil
}
