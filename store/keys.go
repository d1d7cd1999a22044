package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/passman-dev/passman/keyring"
)

// rewrapBatch bounds one re-wrap transaction, so rotating a million versions
// neither holds the write lock for long nor builds one huge commit.
const rewrapBatch = 1000

// RewrapReport says what a re-wrap did.
type RewrapReport struct {
	Active    string   `json:"active"`
	Rewrapped int      `json:"rewrapped"`
	Retired   []string `json:"retired"`
}

// Rewrap re-wraps every data key (and the detection seed) under the
// keyring's active key, then records every other key as retired. Values are
// never decrypted. It is idempotent and safe to re-run after a crash: each
// batch commits on its own, and sealed values already under the active key
// are skipped. Call it after the keyring with the new key has been saved.
func (s *Store) Rewrap(ctx context.Context) (RewrapReport, error) {
	active := s.kr.Active()
	rep := RewrapReport{Active: active}
	if err := s.RegisterKey(ctx, active); err != nil {
		return rep, err
	}
	if err := s.updateInfo(ctx, func(info *Info) { info.Active = active }); err != nil {
		return rep, err
	}
	if err := s.b.Update(ctx, func(tx Tx) error {
		n, err := s.rewrapKey(tx, []byte(keySeed))
		rep.Rewrapped += n
		return err
	}); err != nil {
		return rep, fmt.Errorf("re-wrap detection seed: %w", err)
	}
	var cursor []byte
	for {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		var last []byte
		seen := 0
		err := s.b.Update(ctx, func(tx Tx) error {
			var keys [][]byte
			err := tx.Scan([]byte(prefixSecret), cursor, func(k, _ []byte) (bool, error) {
				if cursor != nil && bytes.Equal(k, cursor) {
					return true, nil
				}
				if _, isRecord, ok := splitSecretKey(k); !ok || isRecord {
					return true, nil
				}
				keys = append(keys, bytes.Clone(k))
				return len(keys) < rewrapBatch, nil
			})
			if err != nil {
				return err
			}
			for _, k := range keys {
				n, err := s.rewrapKey(tx, k)
				if err != nil {
					return err
				}
				rep.Rewrapped += n
			}
			seen = len(keys)
			if seen > 0 {
				last = keys[seen-1]
			}
			return nil
		})
		if err != nil {
			return rep, fmt.Errorf("re-wrap data keys: %w", err)
		}
		if seen < rewrapBatch {
			break
		}
		cursor = last
	}
	err := s.updateInfo(ctx, func(info *Info) {
		for _, id := range info.Keys {
			if id != active && !slices.Contains(info.Retired, id) {
				info.Retired = append(info.Retired, id)
			}
		}
		rep.Retired = slices.Clone(info.Retired)
	})
	return rep, err
}

// rewrapKey re-wraps the sealed value at k if needed, reporting 1 if it did.
func (s *Store) rewrapKey(tx Tx, k []byte) (int, error) {
	b, err := tx.Get(k)
	if err != nil {
		return 0, err
	}
	var sealed keyring.Sealed
	if err := sealed.UnmarshalBinary(b); err != nil {
		return 0, fmt.Errorf("%q: %w", k, err)
	}
	if sealed.KeyID == s.kr.Active() {
		return 0, nil
	}
	// UnmarshalBinary aliases the backend's memory; copy before re-encoding.
	sealed.Ciphertext = bytes.Clone(sealed.Ciphertext)
	sealed.Nonce = bytes.Clone(sealed.Nonce)
	nw, err := s.kr.Rewrap(sealed)
	if err != nil {
		return 0, err
	}
	nb, err := nw.MarshalBinary()
	if err != nil {
		return 0, err
	}
	return 1, tx.Put(k, nb)
}

func (s *Store) updateInfo(ctx context.Context, fn func(*Info)) error {
	return s.b.Update(ctx, func(tx Tx) error {
		info, err := readInfo(tx)
		if err != nil {
			return err
		}
		fn(&info)
		b, err := json.Marshal(info)
		if err != nil {
			return fmt.Errorf("encode store info: %w", err)
		}
		return tx.Put([]byte(keyInfo), b)
	})
}
