package store

import (
	"context"
	"errors"
)

// Backend is the transactional, ordered key/value storage under a Store. It
// is deliberately small so that a clustered backend (etcd) can be added
// without touching the store logic: keys and values are opaque bytes, and
// every read-modify-write happens inside Update.
//
// Update is serializable. A single-writer backend (bbolt) runs fn once under
// its write lock; an optimistic backend (etcd) records the revisions of the
// keys fn read and commits with a compare-and-swap on them, re-running fn on
// conflict — so fn must keep its effects inside tx, apart from ones that are
// safe to repeat.
type Backend interface {
	// View runs fn in a read-only transaction with a consistent snapshot.
	View(ctx context.Context, fn func(tx Tx) error) error
	// Update runs fn in a read-write transaction; it commits when fn returns
	// nil and rolls back otherwise, returning fn's error unchanged.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// Close releases the backend; in-flight transactions finish first.
	Close() error
}

// Tx is one transaction. Byte slices it returns are valid only until the
// transaction ends; copy them to keep them.
type Tx interface {
	// Get returns the value for key, or ErrKeyNotFound.
	Get(key []byte) ([]byte, error)
	// Put sets key to value. It fails in a read-only transaction.
	Put(key, value []byte) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(key []byte) error
	// Scan calls fn for each key with the given prefix, in ascending byte
	// order, starting at the first key >= start (start may be nil). It stops
	// when fn returns false or an error, returning that error.
	Scan(prefix, start []byte, fn func(key, value []byte) (bool, error)) error
}

// ErrKeyNotFound is returned by Tx.Get for a missing key.
var ErrKeyNotFound = errors.New("key not found")

// ErrReadOnly is returned by a write in a View transaction.
var ErrReadOnly = errors.New("transaction is read-only")
