package backup

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/passman-dev/passman/secret"
)

// Bounds of a KV record, above any key or value the store writes (a sealed
// value of the largest secret is under 2 MiB).
const (
	MaxKey   = 64 << 10
	MaxValue = 8 << 20
)

// KVWriter writes key/value records into a KindKV section:
// key length uvarint | key | value length uvarint | value.
type KVWriter struct {
	w   io.Writer
	buf []byte
}

// NewKVWriter writes records to w (a KindKV section).
func NewKVWriter(w io.Writer) *KVWriter { return &KVWriter{w: w} }

// Put writes one record.
func (k *KVWriter) Put(key, value []byte) error {
	if len(key) == 0 || len(key) > MaxKey || len(value) > MaxValue {
		return fmt.Errorf("backup: record of a %d-byte key and %d-byte value is out of bounds", len(key), len(value))
	}
	k.buf = binary.AppendUvarint(k.buf[:0], uint64(len(key)))
	k.buf = append(k.buf, key...)
	k.buf = binary.AppendUvarint(k.buf, uint64(len(value)))
	if _, err := k.w.Write(k.buf); err != nil {
		return err
	}
	_, err := k.w.Write(value)
	return err
}

// ReadKV calls fn for each record of a KindKV section, in order. The slices
// are valid only during the call.
func ReadKV(r io.Reader, fn func(key, value []byte) error) error {
	br := bufio.NewReader(r)
	var key, value []byte
	for {
		n, err := binary.ReadUvarint(br)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return kvError(err)
		}
		if n == 0 || n > MaxKey {
			return corrupt("record key of %d bytes", n)
		}
		key = grow(key, int(n))
		if _, err := io.ReadFull(br, key); err != nil {
			return kvError(err)
		}
		if n, err = binary.ReadUvarint(br); err != nil {
			return kvError(err)
		}
		if n > MaxValue {
			return corrupt("record value of %d bytes", n)
		}
		value = grow(value, int(n))
		if _, err := io.ReadFull(br, value); err != nil {
			return kvError(err)
		}
		if err := fn(key, value); err != nil {
			return err
		}
	}
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

func kvError(err error) error {
	var ioErr *readError
	switch {
	case errors.Is(err, secret.ErrCorrupt), errors.As(err, &ioErr):
		return err
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return corrupt("a key/value record stops short")
	}
	// binary.ReadUvarint's own error: a length longer than 64 bits.
	return corrupt("a key/value record length is malformed")
}
