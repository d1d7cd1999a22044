package scanner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Cache remembers the findings of scanned commits, so that a scan of a
// history it has seen reads only the new commits. A commit id names its
// content, so results stay valid for any repository holding that commit;
// they are kept per rules hash (engine, rules, managed index) and a scan
// with other rules drops the rest. The cache holds what a scan reports and
// nothing more: findings carry no secret text.
//
// Whoever can write the cache file can hide findings from later scans, as
// whoever can write the scanner's binary could: keep it in the user's own
// cache directory.
type Cache struct {
	db *bolt.DB
}

// DefaultCachePath is the cache file under the user's cache directory.
func DefaultCachePath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("scan cache: %w", err)
	}
	return filepath.Join(dir, "passman", "scan-cache.db"), nil
}

// ErrCacheBusy means another scan holds the cache file.
var ErrCacheBusy = errors.New("scan cache is in use by another scan")

// OpenCache opens (creating) the cache file at path.
func OpenCache(path string) (*Cache, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("scan cache: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrCacheBusy, path)
	}
	if err != nil {
		return nil, fmt.Errorf("scan cache %s: %w", path, err)
	}
	return &Cache{db: db}, nil
}

// Close closes the cache file.
func (c *Cache) Close() error { return c.db.Close() }

// load returns the cached results of the commits in shas.
func (c *Cache) load(rules string, shas []string) (map[string]*commitResult, error) {
	out := map[string]*commitResult{}
	if rules == "" {
		return out, nil
	}
	err := c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(rules))
		if b == nil {
			return nil
		}
		for _, sha := range shas {
			v := b.Get([]byte(sha))
			if v == nil {
				continue
			}
			var r commitResult
			if err := json.Unmarshal(v, &r); err != nil || r.SHA != sha {
				continue // a damaged entry is scanned again
			}
			out[sha] = &r
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan cache: %w", err)
	}
	return out, nil
}

// store records results under rules, dropping results of other rules.
func (c *Cache) store(rules string, results map[string]*commitResult) error {
	if rules == "" {
		return nil
	}
	err := c.db.Update(func(tx *bolt.Tx) error {
		var stale [][]byte
		if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if string(name) != rules {
				stale = append(stale, append([]byte(nil), name...))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, name := range stale {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		b, err := tx.CreateBucketIfNotExists([]byte(rules))
		if err != nil {
			return err
		}
		for sha, r := range results {
			v, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(sha), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan cache: %w", err)
	}
	return nil
}
