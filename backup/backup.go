// Package backup is the format of a passman store backup: a header naming
// what the backup holds, sections of data streamed in bounded chunks, and a
// SHA-256 of everything before it at the end. A reader refuses, with an
// error wrapping secret.ErrCorrupt, any stream that is not a backup, is of
// another format version, is damaged or stops short; the checksum is
// checked when the last section has been read, so a restore writes what
// it reads to a scratch place and keeps it only once Next returns io.EOF.
//
// A backup holds what the store holds: sealed values and data keys wrapped
// by master keys, never a master key. It is as confidential as the store's
// database file, no more.
//
//	magic "PMBACKUP" | version uint16 | header length uint32 | header JSON
//	section*: kind byte | (chunk length uint32 | chunk)* | 0 uint32
//	end: 'E' | SHA-256 of every byte before the 'E'
package backup

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/passman-dev/passman/secret"
)

// Magic opens every backup.
const Magic = "PMBACKUP"

// Version is the format version this package writes and reads.
const Version = 1

// Limits a reader enforces, so a hostile stream cannot make it allocate
// without bound.
const (
	MaxHeader = 64 << 10
	MaxChunk  = 1 << 20
)

// Kind names a section.
type Kind byte

// Section kinds.
const (
	// KindBoltDB is a bbolt database file, byte for byte (bbolt's
	// Tx.WriteTo under one read transaction).
	KindBoltDB Kind = 'D'
	// KindKV is the store's keyspace as key/value records (WriteKV), read
	// at one revision: the portable form, which restores into any backend.
	KindKV Kind = 'K'
	// KindAudit is the audit log up to the snapshot, whole lines only.
	KindAudit Kind = 'A'
	kindEnd   Kind = 'E'
)

func (k Kind) valid() bool { return k == KindBoltDB || k == KindKV || k == KindAudit }

// Options tune a backup.
type Options struct {
	// Logical writes the keyspace as key/value records (KindKV) instead of
	// the database file: larger, but it restores into any backend and
	// carries no freed pages. A backend that cannot copy its file (etcd)
	// always writes this.
	Logical bool `json:"logical,omitempty"`
}

// Header describes a backup.
type Header struct {
	StoreID   string    `json:"store_id"`
	CreatedAt time.Time `json:"created_at"`
	// Source is the backend the backup was taken from: "bbolt" or "etcd".
	Source string `json:"source"`
	// Revision is the etcd revision a KV section was read at (0 for bbolt).
	Revision int64 `json:"revision,omitempty"`
	// KeyIDs are the master keys the store's data keys are wrapped by:
	// a restore needs one of them.
	KeyIDs []string `json:"key_ids"`
	// AuditSeq is the audit chain head the store had recorded at the
	// snapshot; the audit section holds at least that many entries.
	AuditSeq uint64 `json:"audit_seq"`
	// ServerID names the server of a cluster whose audit chain the audit
	// section is ("" for a single store).
	ServerID string `json:"server_id,omitempty"`
}

func (h Header) check() error {
	switch {
	case h.StoreID == "":
		return errors.New("no store id")
	case h.Source != "bbolt" && h.Source != "etcd":
		return fmt.Errorf("unknown source %q", h.Source)
	case len(h.KeyIDs) == 0:
		return errors.New("no master key ids")
	}
	return nil
}

// Writer writes a backup.
type Writer struct {
	w   io.Writer
	sum hash.Hash
	// open is the section being written, nil between sections.
	open *sectionWriter
	err  error
}

// NewWriter writes the magic, version and header to w.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if err := h.check(); err != nil {
		return nil, fmt.Errorf("backup header: %w", err)
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode backup header: %w", err)
	}
	if len(hb) > MaxHeader {
		return nil, fmt.Errorf("backup header is %d bytes, more than %d", len(hb), MaxHeader)
	}
	bw := &Writer{w: w, sum: sha256.New()}
	b := make([]byte, 0, len(Magic)+6+len(hb))
	b = append(b, Magic...)
	b = binary.BigEndian.AppendUint16(b, Version)
	b = binary.BigEndian.AppendUint32(b, uint32(len(hb)))
	b = append(b, hb...)
	if err := bw.write(b); err != nil {
		return nil, err
	}
	return bw, nil
}

func (w *Writer) write(b []byte) error {
	if w.err != nil {
		return w.err
	}
	w.sum.Write(b)
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("write backup: %w", err)
	}
	return w.err
}

// Section starts a section of kind k; write its data to the returned
// writer and close it before the next section.
func (w *Writer) Section(k Kind) (io.WriteCloser, error) {
	if !k.valid() {
		return nil, fmt.Errorf("backup: unknown section kind %q", k)
	}
	if w.open != nil {
		return nil, errors.New("backup: a section is still open")
	}
	if err := w.write([]byte{byte(k)}); err != nil {
		return nil, err
	}
	w.open = &sectionWriter{w: w, buf: make([]byte, 0, 64<<10)}
	return w.open, nil
}

// Close ends the backup with its checksum. It does not close the
// underlying writer.
func (w *Writer) Close() error {
	if w.open != nil {
		return errors.New("backup: a section is still open")
	}
	if err := w.write([]byte{byte(kindEnd)}); err != nil {
		return err
	}
	sum := w.sum.Sum(nil)
	if _, err := w.w.Write(sum); err != nil {
		w.err = fmt.Errorf("write backup: %w", err)
	}
	return w.err
}

type sectionWriter struct {
	w   *Writer
	buf []byte
}

func (s *sectionWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(cap(s.buf)-len(s.buf), len(p))
		s.buf = append(s.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(s.buf) == cap(s.buf) {
			if err := s.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (s *sectionWriter) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(s.buf)))
	if err := s.w.write(l[:]); err != nil {
		return err
	}
	err := s.w.write(s.buf)
	s.buf = s.buf[:0]
	return err
}

func (s *sectionWriter) Close() error {
	if s.w.open != s {
		return errors.New("backup: section already closed")
	}
	if err := s.flush(); err != nil {
		return err
	}
	s.w.open = nil
	return s.w.write([]byte{0, 0, 0, 0})
}

// Reader reads a backup.
type Reader struct {
	r      *bufio.Reader
	sum    hash.Hash
	Header Header
	// cur is the section being read; done once the checksum matched.
	cur  *sectionReader
	done bool
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: backup: %s", secret.ErrCorrupt, fmt.Sprintf(format, args...))
}

// short turns an end of stream into the error of a truncated backup.
func short(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corrupt("truncated: the stream ends before the backup does")
	}
	return &readError{err}
}

// readError is a failure to read the stream itself (not its content).
type readError struct{ err error }

func (e *readError) Error() string { return "read backup: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// NewReader reads and checks the header.
func NewReader(r io.Reader) (*Reader, error) {
	br := &Reader{r: bufio.NewReaderSize(r, 64<<10), sum: sha256.New()}
	var pre [len(Magic) + 6]byte
	if n, err := io.ReadFull(br.r, pre[:]); err != nil {
		m := min(n, len(Magic))
		if n == 0 || string(pre[:m]) != Magic[:m] {
			return nil, corrupt("not a passman backup")
		}
		return nil, short(err)
	}
	if string(pre[:len(Magic)]) != Magic {
		return nil, corrupt("not a passman backup (no %q magic)", Magic)
	}
	if v := binary.BigEndian.Uint16(pre[len(Magic):]); v != Version {
		return nil, fmt.Errorf("%w: backup format version %d is not supported by this passman (it reads version %d)", secret.ErrCorrupt, v, Version)
	}
	n := binary.BigEndian.Uint32(pre[len(Magic)+2:])
	if n == 0 || n > MaxHeader {
		return nil, corrupt("header length %d outside 1..%d", n, MaxHeader)
	}
	hb := make([]byte, n)
	if _, err := io.ReadFull(br.r, hb); err != nil {
		return nil, short(err)
	}
	dec := json.NewDecoder(bytes.NewReader(hb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&br.Header); err != nil {
		return nil, corrupt("header: %v", err)
	}
	if dec.More() {
		return nil, corrupt("header: data after the JSON object")
	}
	if err := br.Header.check(); err != nil {
		return nil, corrupt("header: %v", err)
	}
	br.sum.Write(pre[:])
	br.sum.Write(hb)
	return br, nil
}

// Next returns the next section; it must be read to its end (or Next
// skips the rest of it). After the last section Next checks the checksum
// and returns io.EOF if it matches: only then is what was read trustworthy.
func (r *Reader) Next() (Kind, io.Reader, error) {
	if r.done {
		return 0, nil, io.EOF
	}
	if r.cur != nil {
		if _, err := io.Copy(io.Discard, r.cur); err != nil {
			return 0, nil, err
		}
		r.cur = nil
	}
	kb, err := r.r.ReadByte()
	if err != nil {
		return 0, nil, short(err)
	}
	r.sum.Write([]byte{kb})
	k := Kind(kb)
	if k == kindEnd {
		want := r.sum.Sum(nil)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(r.r, got); err != nil {
			return 0, nil, short(err)
		}
		if !bytes.Equal(got, want) {
			return 0, nil, corrupt("checksum mismatch: the backup is damaged")
		}
		if _, err := r.r.ReadByte(); err == nil {
			return 0, nil, corrupt("data after the end of the backup")
		}
		r.done = true
		return 0, nil, io.EOF
	}
	if !k.valid() {
		return 0, nil, corrupt("unknown section kind 0x%02x", kb)
	}
	r.cur = &sectionReader{r: r}
	return k, r.cur, nil
}

type sectionReader struct {
	r    *Reader
	left uint32 // bytes left in the current chunk
	eof  bool
}

func (s *sectionReader) Read(p []byte) (int, error) {
	if s.eof {
		return 0, io.EOF
	}
	if s.left == 0 {
		var l [4]byte
		if _, err := io.ReadFull(s.r.r, l[:]); err != nil {
			return 0, short(err)
		}
		s.r.sum.Write(l[:])
		n := binary.BigEndian.Uint32(l[:])
		if n == 0 {
			s.eof = true
			return 0, io.EOF
		}
		if n > MaxChunk {
			return 0, corrupt("chunk of %d bytes, more than %d", n, MaxChunk)
		}
		s.left = n
	}
	p = p[:min(len(p), int(s.left))]
	n, err := io.ReadFull(s.r.r, p)
	s.r.sum.Write(p[:n])
	s.left -= uint32(n)
	if err != nil {
		return n, short(err)
	}
	return n, nil
}
