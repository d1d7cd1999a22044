package scanner

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"

	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/scanner/managed"
	"github.com/passman-dev/passman/secret"
)

// confirmer asks the store about managed candidates and remembers its
// answers for the Scanner's life, so that a value seen in many commits is
// confirmed once. One request carries a fragment's new candidates (at
// most fpindex.MaxConfirm each): candidates are rare, since a token that
// is no managed value is one with probability about n/2^24 for an index
// of n values.
type confirmer struct {
	c fpindex.Confirmer
	// storeID is the index's store; the confirming store must be it, or
	// every candidate would be silently unconfirmed.
	storeID string

	mu    sync.Mutex
	known map[[32]byte][]secret.FingerprintMatch // nil value: not managed
}

func newConfirmer(c fpindex.Confirmer, ix managed.Index) *confirmer {
	cf := &confirmer{c: c, known: map[[32]byte][]secret.FingerprintMatch{}}
	if s, ok := ix.(interface{ StoreID() string }); ok {
		cf.storeID = s.StoreID()
	}
	return cf
}

// resolve returns the managed versions of each candidate's fingerprint
// that the store confirms.
func (c *confirmer) resolve(ctx context.Context, cands []managed.Match) (map[[32]byte][]secret.FingerprintMatch, error) {
	if len(cands) == 0 {
		return nil, nil
	}
	out := make(map[[32]byte][]secret.FingerprintMatch, len(cands))
	var ask [][32]byte
	c.mu.Lock()
	for _, m := range cands {
		if ms, ok := c.known[m.Fingerprint]; ok {
			out[m.Fingerprint] = ms
		} else if _, queued := out[m.Fingerprint]; !queued {
			out[m.Fingerprint] = nil
			ask = append(ask, m.Fingerprint)
		}
	}
	c.mu.Unlock()
	for batch := range slices.Chunk(ask, fpindex.MaxConfirm) {
		fps := make([]string, len(batch))
		for i, fp := range batch {
			fps[i] = hex.EncodeToString(fp[:])
		}
		conf, err := c.c.ConfirmFingerprints(ctx, fps)
		if err != nil {
			return nil, fmt.Errorf("confirm managed candidates: %w", err)
		}
		if c.storeID != "" && conf.StoreID != c.storeID {
			return nil, fmt.Errorf("%w: the fingerprint index is of store %s, but store %s confirms its candidates", secret.ErrInvalidArgument, c.storeID, conf.StoreID)
		}
		c.mu.Lock()
		for i, fp := range batch {
			ms := conf.Matches[fps[i]]
			c.known[fp], out[fp] = ms, ms
		}
		c.mu.Unlock()
	}
	return out, nil
}
