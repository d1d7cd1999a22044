package store

import (
	"fmt"
	"strings"
	"testing"
)

func TestRecordCache(t *testing.T) {
	c := newRecordCache()
	raw := func(owner string) []byte {
		return []byte(fmt.Sprintf(`{"meta":{"owner":%q},"versions":[{"n":1,"state":"active"}],"stages":{"current":1},"last":1}`, owner))
	}
	a1, err := c.decode("app/a", raw("team-a"))
	if err != nil {
		t.Fatal(err)
	}
	a2, err := c.decode("app/a", raw("team-a"))
	if err != nil || a2 != a1 {
		t.Fatalf("same bytes decoded again (%p, %p, %v), want the cached record", a1, a2, err)
	}
	// Changed bytes under the same path: never the stale record.
	a3, err := c.decode("app/a", raw("team-b"))
	if err != nil || a3 == a1 || a3.Meta.Owner != "team-b" {
		t.Fatalf("changed record: got owner %q (%v), want team-b freshly decoded", a3.Meta.Owner, err)
	}
	if _, err := c.decode("app/bad", []byte(`{"meta":`)); err == nil {
		t.Fatal("malformed record decoded without error")
	}
	if _, ok := c.m["app/bad"]; ok {
		t.Fatal("a record that failed to decode was cached")
	}

	// The byte budget holds however many records pass through.
	big := strings.Repeat("x", recordCacheBytes/64)
	for i := range 200 {
		if _, err := c.decode(fmt.Sprintf("app/%d", i), raw(big)); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, e := range c.m {
		total += len(e.raw)
	}
	if total != c.bytes || c.bytes > recordCacheBytes {
		t.Fatalf("cache holds %d bytes (counted %d), budget %d", total, c.bytes, recordCacheBytes)
	}
	// A record that changes size while the cache is full: the count stays
	// exact (an entry being replaced is never also evicted, and so counted
	// out twice). New paths keep the cache full; app/hot alternates between
	// small and large, so that growing it needs evictions.
	c = newRecordCache()
	fill := strings.Repeat("x", recordCacheBytes/32)
	sizes := []string{strings.Repeat("x", recordCacheBytes/64), strings.Repeat("x", recordCacheBytes/16-200)}
	for i := range 300 {
		if _, err := c.decode(fmt.Sprintf("fill/%d", i), raw(fill)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.decode("app/hot", raw(sizes[i%2])); err != nil {
			t.Fatal(err)
		}
		total = 0
		for _, e := range c.m {
			total += len(e.raw)
		}
		if total != c.bytes || total > recordCacheBytes {
			t.Fatalf("round %d: cache holds %d bytes (counted %d), budget %d", i, total, c.bytes, recordCacheBytes)
		}
	}
	// A record too big to be worth a share of the budget is not kept.
	if _, err := c.decode("app/huge", raw(strings.Repeat("y", recordCacheBytes/8))); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.m["app/huge"]; ok {
		t.Fatal("oversized record cached")
	}
}
