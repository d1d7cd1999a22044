// Package audit writes and verifies passman's audit log: an append-only,
// hash-chained file of JSON lines holding one Entry per operation, whether it
// succeeded, failed or was denied.
//
// # Format
//
// Each line is the encoding/json encoding of an Entry (fixed field order,
// Details keys sorted, UTC time) followed by '\n'. Entries are numbered from
// 1 without gaps. prev_hash is the hash of the previous entry, 64 zeros for
// the first, and hash is the lowercase hex SHA-256 of the line with the value
// of hash emptied: the line's final `"hash":"<hex>"}` replaced by
// `"hash":""}`. Because the hash covers the exact bytes on disk, an
// independent tool can check the chain without re-encoding anything. Verify
// goes further and requires each line to be exactly the encoding this package
// writes, so whitespace, key-case, duplicate-key and escaping variants, which
// other JSON readers may interpret differently from ours, count as edits.
//
// # Anchor
//
// Editing a line breaks its hash, and deleting or reordering lines breaks
// seq or prev_hash, but cutting entries off the end leaves a valid chain. So
// the caller records Log.Head in the secret store with each operation and
// passes it to Verify as the anchor: a log that ends before the anchor, or
// whose entry at the anchor's seq has a different hash, does not verify.
// Entries after the anchor are reported as unconfirmed rather than as an
// error: they were written just before a crash, before the store recorded
// them, and the caller reconciles them.
//
// The chain hash is unkeyed, so whoever can write both the log and the store
// could re-chain a doctored log and record its head. A Checkpoint, the form
// in which the caller records the head, is therefore signed: an HMAC-SHA256
// over seq, hash, time and key ID under a key only the store's owner can
// derive. Verify checks the chain against the head; checking the signature
// is the caller's, which has (or lacks) the key, and it says so in the
// Report's Signature.
//
// # Durability
//
// Append writes entries whole with write(2): the lines of concurrent
// appenders go out together in one call, and with SyncFsync one fsync covers
// them all (group commit). An entry counts as written when Append returns
// nil, which happens:
//   - with SyncWrite, after write(2) returns: the entry is in the OS page
//     cache and survives a crash of the process, but not of the OS or a
//     power loss;
//   - with SyncFsync, the default, after fsync: it survives both.
//
// If a write or sync fails, the Log is failed for good: every later Append
// returns an error wrapping secret.ErrAudit until the file is reopened,
// because the file may now end in a partial line and chaining onto it would
// be wrong. The caller must treat that error as "operation not performed".
//
// # Crash recovery
//
// A crash during a write can leave a final partial line without '\n'. Append
// never returned nil for it, so it was never acknowledged, and Open truncates
// it away before appending. A partial line longer than any entry cannot come
// from a torn write, so Open refuses it with secret.ErrTampered rather than
// discard evidence. Open checks only the last complete line, which it needs
// to continue the chain; Verify checks all of them.
//
// # Concurrency
//
// A Log is safe for concurrent use and its entries are totally ordered by
// Seq. Where the platform has flock, Open takes an exclusive advisory lock,
// so a second Log on the same file, in this process or another, fails instead
// of forking the chain. Verify, Read and Tail take no lock and may read a live
// log.
package audit
