package etcd_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/etcd"
	"github.com/passman-dev/passman/store/storetest"
)

// open returns a backend on the shared cluster under a prefix of the
// test's own, so tests sharing the cluster never see each other's keys.
func open(t testing.TB, cfg etcd.Config) *etcd.DB {
	t.Helper()
	c := etcdtest.Shared(t)
	cfg.Endpoints = c.Endpoints()
	if cfg.Prefix == "" {
		cfg.Prefix = etcdtest.Prefix(t.Name())
	}
	d, err := etcd.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB) store.Backend { return open(t, etcd.Config{}) })
}

// Small pages make every Scan of the suite cross page boundaries.
func TestConformanceSmallPages(t *testing.T) {
	storetest.Run(t, func(t testing.TB) store.Backend { return open(t, etcd.Config{PageSize: 2}) })
}

// The suite again with every key read through the read cache, loaded
// before the suite's first read.
func TestConformanceReadCache(t *testing.T) {
	hits, misses := etcd.CacheStats()
	storetest.Run(t, func(t testing.TB) store.Backend {
		d := open(t, etcd.Config{ReadCache: []string{""}})
		for start := time.Now(); !etcd.CachesLoaded(d); time.Sleep(5 * time.Millisecond) {
			if time.Since(start) > 10*time.Second {
				t.Fatal("read cache not loaded after 10s")
			}
		}
		return d
	})
	h, m := etcd.CacheStats()
	if h == hits {
		t.Fatal("the read cache answered none of the suite's reads")
	}
	t.Logf("point reads: %d from the read cache, %d from etcd", h-hits, m-misses)
}

func TestPrefixIsolation(t *testing.T) {
	a := open(t, etcd.Config{Prefix: etcdtest.Prefix("a")})
	b := open(t, etcd.Config{Prefix: etcdtest.Prefix("a")})
	ctx := context.Background()
	if err := a.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("s/x"), []byte("1")) }); err != nil {
		t.Fatal(err)
	}
	err := b.View(ctx, func(tx store.Tx) error {
		if _, err := tx.Get([]byte("s/x")); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("other prefix sees s/x: %v", err)
		}
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			t.Errorf("other prefix scans %q", k)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLimits(t *testing.T) {
	d := open(t, etcd.Config{MaxTxnOps: 10, MaxRequestBytes: 1 << 20})
	ctx := context.Background()
	err := d.Update(ctx, func(tx store.Tx) error {
		return tx.Put([]byte("s/big"), make([]byte, etcd.MaxValueSize+1))
	})
	if !errors.Is(err, secret.ErrTooLarge) {
		t.Fatalf("value over MaxValueSize: %v", err)
	}
	err = d.Update(ctx, func(tx store.Tx) error {
		for i := range 11 {
			if err := tx.Put([]byte{'k', byte('a' + i)}, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, secret.ErrTooLarge) || !strings.Contains(err.Error(), "max-txn-ops") {
		t.Fatalf("11 writes with MaxTxnOps 10: %v", err)
	}
	err = d.Update(ctx, func(tx store.Tx) error {
		return tx.Put([]byte("s/big"), make([]byte, 1<<20))
	})
	if !errors.Is(err, secret.ErrTooLarge) || !strings.Contains(err.Error(), "max-request-bytes") {
		t.Fatalf("1 MiB with MaxRequestBytes 1 MiB: %v", err)
	}
	// Nothing of the refused transactions was written.
	err = d.View(ctx, func(tx store.Tx) error {
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			t.Errorf("refused write left %q", k)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A server that believes etcd takes more than it does gets etcd's refusal
// as ErrTooLarge, not as an outage.
func TestServerRefusesOversized(t *testing.T) {
	d := open(t, etcd.Config{MaxRequestBytes: 64 << 20})
	err := d.Update(context.Background(), func(tx store.Tx) error {
		for i := range 6 {
			if err := tx.Put([]byte{'k', byte('a' + i)}, make([]byte, etcd.MaxValueSize)); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, secret.ErrTooLarge) {
		t.Fatalf("12 MiB transaction: %v", err)
	}
}

func TestParseURL(t *testing.T) {
	cfg, err := etcd.ParseURL("etcd://127.0.0.1:2379,127.0.0.1:22379/passman/prod")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Endpoints, " ") != "http://127.0.0.1:2379 http://127.0.0.1:22379" || cfg.Prefix != "passman/prod/" || cfg.TLS != nil {
		t.Fatalf("cfg = %+v", cfg)
	}
	cfg, err = etcd.ParseURL("etcd://h:1?tls=1")
	if err != nil || cfg.Endpoints[0] != "https://h:1" || cfg.TLS == nil || cfg.Prefix != "" {
		t.Fatalf("tls: %+v, %v", cfg, err)
	}
	for _, bad := range []string{
		"", "http://h:1/p", "etcd:///p", "etcd://u:pw@h:1/p", "etcd://h:1/p?password=x",
		"etcd://h:1,,h:2/p", "etcd://h:1/p?cacert=/nonexistent", "etcd://h:1/p?cert=c.pem",
		"etcd://" + strings.Repeat("h", 1<<16) + "%zz",
	} {
		if _, err := etcd.ParseURL(bad); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("ParseURL(%.40q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

// AfterCommit learns each attempt's outcome: false for an attempt that
// lost to another writer (and ran again), true for the one that committed.
func TestAfterCommit(t *testing.T) {
	d := open(t, etcd.Config{})
	other := open(t, etcd.Config{Prefix: d.Prefix()})
	ctx := context.Background()
	var outcomes []bool
	attempt := 0
	err := d.Update(ctx, func(tx store.Tx) error {
		attempt++
		if _, err := tx.Get([]byte("k")); err != nil && !errors.Is(err, store.ErrKeyNotFound) {
			return err
		}
		if attempt == 1 {
			// Another writer changes what this attempt read.
			if err := other.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("k"), []byte("other")) }); err != nil {
				return err
			}
		}
		tx.(interface{ AfterCommit(func(bool)) }).AfterCommit(func(ok bool) { outcomes = append(outcomes, ok) })
		return tx.Put([]byte("k"), []byte("mine"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(outcomes) != 2 || outcomes[0] || !outcomes[1] {
		t.Fatalf("outcomes = %v, want [false true]", outcomes)
	}
	// A BeforeCommit failure is an attempt that did not commit.
	outcomes = nil
	errHook := errors.New("hook")
	err = d.Update(ctx, func(tx store.Tx) error {
		tx.(interface{ AfterCommit(func(bool)) }).AfterCommit(func(ok bool) { outcomes = append(outcomes, ok) })
		tx.(interface{ BeforeCommit(string, func() error) }).BeforeCommit("", func() error { return errHook })
		return tx.Put([]byte("k2"), nil)
	})
	if !errors.Is(err, errHook) || len(outcomes) != 1 || outcomes[0] {
		t.Fatalf("hook failure: %v, outcomes %v", err, outcomes)
	}
}
