package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

func versionsOf(t testing.TB, e *env, path string) map[int]secret.VersionState {
	t.Helper()
	s, err := e.st.Describe(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]secret.VersionState{}
	for _, v := range s.Versions {
		out[v.Version] = v.State
	}
	return out
}

func TestPruneKeepsStagedVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	three := 3
	e.put(t, "p", "v1", secret.PutOptions{Metadata: &secret.MetadataUpdate{MaxVersions: &three}})
	e.put(t, "p", "v2", secret.PutOptions{Stage: secret.StagePending})
	for i := 3; i <= 6; i++ {
		e.put(t, "p", fmt.Sprintf("v%d", i), secret.PutOptions{})
	}
	// v2 is pending and survives; v6 current, v5 previous; v1, v3, v4 pruned
	// oldest first until only three are left... plus the staged survivor.
	got := versionsOf(t, e, "p")
	want := map[int]secret.VersionState{2: secret.StateActive, 5: secret.StateActive, 6: secret.StateActive}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("versions after pruning (-want +got):\n%s", d)
	}
	if v, _ := e.get(t, "p", secret.Selector{Stage: secret.StagePending}); v != "v2" {
		t.Fatalf("pending = %q", v)
	}
	if m, err := e.st.LookupValue(ctx, []byte("v1")); err != nil || len(m) != 0 {
		t.Fatalf("pruned value still indexed: %v %v", m, err)
	}
	// Version numbers are never reused after pruning.
	if info := e.put(t, "p", "v7", secret.PutOptions{}); info.Version != 7 {
		t.Fatalf("next version %d, want 7", info.Version)
	}
	// Lowering max versions prunes at once.
	one := 1
	if _, err := e.st.UpdateMetadata(ctx, bob, "p", secret.MetadataUpdate{MaxVersions: &one}); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[int]secret.VersionState{2: "active", 6: "active", 7: "active"}, versionsOf(t, e, "p")); d != "" {
		t.Fatalf("after lowering max versions (-want +got):\n%s", d)
	}
}

func TestDeleteUndeleteDestroy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		e.put(t, "d", fmt.Sprintf("value-%d", i), secret.PutOptions{})
	}
	if err := e.st.Delete(ctx, bob, "d", []int{1, 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Get(ctx, "d", secret.Selector{Version: 1}); !errors.Is(err, secret.ErrDeleted) {
		t.Fatalf("get deleted: %v", err)
	}
	if _, err := e.st.Get(ctx, "d", secret.Selector{Stage: secret.StagePrevious}); !errors.Is(err, secret.ErrDeleted) {
		t.Fatalf("get deleted previous: %v", err)
	}
	if err := e.st.Delete(ctx, bob, "d", []int{2}); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	if err := e.st.Undelete(ctx, bob, "d", []int{2}); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.get(t, "d", secret.Selector{Version: 2}); v != "value-2" {
		t.Fatalf("undeleted = %q", v)
	}
	// One bad version in a request changes nothing.
	if err := e.st.Delete(ctx, bob, "d", []int{2, 42}); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("delete with a missing version: %v", err)
	}
	if versionsOf(t, e, "d")[2] != secret.StateActive {
		t.Fatal("partial delete applied")
	}
	// Destroy: current refused; others gone for good.
	if err := e.st.Destroy(ctx, bob, "d", []int{3}); !errors.Is(err, secret.ErrPrecondition) {
		t.Fatalf("destroy current: %v", err)
	}
	if err := e.st.Destroy(ctx, bob, "d", nil); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Fatalf("destroy without versions: %v", err)
	}
	if err := e.st.Destroy(ctx, bob, "d", []int{1, 2}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2} {
		if _, err := e.st.Get(ctx, "d", secret.Selector{Version: n}); !errors.Is(err, secret.ErrDestroyed) {
			t.Fatalf("get destroyed v%d: %v", n, err)
		}
	}
	if err := e.st.Undelete(ctx, bob, "d", []int{1}); !errors.Is(err, secret.ErrDestroyed) {
		t.Fatalf("undelete destroyed: %v", err)
	}
	if m, _ := e.st.LookupValue(ctx, []byte("value-2")); len(m) != 0 {
		t.Fatalf("destroyed value still indexed: %v", m)
	}
	if d := cmp.Diff(map[int][]secret.Stage{3: {secret.StageCurrent}}, stagesOf(t, e, "d")); d != "" {
		t.Fatalf("previous label survived destroy (-want +got):\n%s", d)
	}
	// Deleting the current version (default) makes the secret unreadable.
	if err := e.st.Delete(ctx, bob, "d", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Get(ctx, "d", secret.Selector{}); !errors.Is(err, secret.ErrDeleted) {
		t.Fatalf("get after deleting current: %v", err)
	}
}

// TestDestroyRemovesCiphertext checks the bytes are gone from the database,
// not only hidden: after destroy and a compaction-free reopen, no page of
// the live keyspace holds the sealed value.
func TestDestroyRemovesCiphertext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.put(t, "x", "first", secret.PutOptions{})
	e.put(t, "x", "second", secret.PutOptions{})
	var sealed []byte
	if err := e.db.View(ctx, func(tx store.Tx) error {
		return tx.Scan([]byte("s/x\x00\x01"), nil, func(k, v []byte) (bool, error) {
			sealed = bytes.Clone(v)
			return false, nil
		})
	}); err != nil || sealed == nil {
		t.Fatalf("no sealed value for v1: %v", err)
	}
	if err := e.st.Destroy(ctx, bob, "x", []int{1}); err != nil {
		t.Fatal(err)
	}
	found := false
	if err := e.db.View(ctx, func(tx store.Tx) error {
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			found = found || bytes.Contains(v, sealed[len(sealed)-32:])
			return true, nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if found {
		t.Fatal("destroyed ciphertext is still in the keyspace")
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.put(t, "gone", "v", secret.PutOptions{})
	e.put(t, "gone2", "v", secret.PutOptions{})
	if err := e.st.Purge(ctx, bob, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Describe(ctx, "gone"); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("describe purged: %v", err)
	}
	m, err := e.st.LookupValue(ctx, []byte("v"))
	if err != nil || len(m) != 1 || m[0].Path != "gone2" {
		t.Fatalf("index after purge: %v %v", m, err)
	}
	if err := e.st.Purge(ctx, bob, "gone"); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("purge twice: %v", err)
	}
}

func TestRollback(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.put(t, "r", "good", secret.PutOptions{})
	e.put(t, "r", "bad", secret.PutOptions{})
	info, err := e.st.Rollback(ctx, bob, "r", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, cur := e.get(t, "r", secret.Selector{}); got != "good" || cur.Version != 3 || info.Version != 3 {
		t.Fatalf("after rollback: %q v%d", got, cur.Version)
	}
	if prev, _ := e.get(t, "r", secret.Selector{Stage: secret.StagePrevious}); prev != "bad" {
		t.Fatalf("previous after rollback = %q", prev)
	}
	m, _ := e.st.LookupValue(ctx, []byte("good"))
	if len(m) != 2 {
		t.Fatalf("rolled-back value indexed %d times, want 2 (v1 and v3)", len(m))
	}
	if err := e.st.Delete(ctx, bob, "r", []int{2}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Rollback(ctx, bob, "r", 2); !errors.Is(err, secret.ErrDeleted) {
		t.Fatalf("rollback to deleted: %v", err)
	}
	if _, err := e.st.Rollback(ctx, bob, "r", 9); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("rollback to missing: %v", err)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	paths := []string{"prod/a", "prod/b", "prod/c/d", "prod0", "prodx/y", "dev/a", "prod.old", "prod"}
	for _, p := range paths {
		// Several versions each: values share the keyspace with records.
		for v := range 3 {
			e.put(t, p, fmt.Sprint("v", v), secret.PutOptions{})
		}
	}
	list := func(prefix string, limit int) []string {
		var out []string
		opts := secret.ListOptions{Prefix: prefix, Limit: limit}
		for pages := 0; ; pages++ {
			if pages > 20 {
				t.Fatal("pagination does not end")
			}
			p, err := e.st.List(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if limit > 0 && len(p.Entries) > limit {
				t.Fatalf("page of %d > limit %d", len(p.Entries), limit)
			}
			for _, en := range p.Entries {
				out = append(out, en.Path)
			}
			if p.Next == "" {
				return out
			}
			opts.After = p.Next
		}
	}
	for name, tc := range map[string]struct {
		prefix string
		limit  int
		want   []string
	}{
		"folder":            {"prod/", 0, []string{"prod/a", "prod/b", "prod/c/d"}},
		"folder paginated":  {"prod/", 1, []string{"prod/a", "prod/b", "prod/c/d"}},
		"name prefix":       {"prod", 2, []string{"prod", "prod.old", "prod/a", "prod/b", "prod/c/d", "prod0", "prodx/y"}},
		"everything":        {"", 3, []string{"dev/a", "prod", "prod.old", "prod/a", "prod/b", "prod/c/d", "prod0", "prodx/y"}},
		"page of one":       {"", 1, []string{"dev/a", "prod", "prod.old", "prod/a", "prod/b", "prod/c/d", "prod0", "prodx/y"}},
		"nothing":           {"zzz", 0, nil},
		"exact page length": {"prod/", 3, []string{"prod/a", "prod/b", "prod/c/d"}},
	} {
		if d := cmp.Diff(tc.want, list(tc.prefix, tc.limit)); d != "" {
			t.Errorf("%s (-want +got):\n%s", name, d)
		}
	}
	withMeta, err := e.st.List(ctx, secret.ListOptions{Prefix: "prod/a", WithMetadata: true})
	if err != nil || len(withMeta.Entries) != 1 || withMeta.Entries[0].Metadata == nil || withMeta.Entries[0].Metadata.CreatedBy != "bob" {
		t.Fatalf("list with metadata: %+v %v", withMeta, err)
	}
	if plain, _ := e.st.List(ctx, secret.ListOptions{Prefix: "prod/a"}); plain.Entries[0].Metadata != nil {
		t.Fatal("metadata filled without being asked for")
	}
	for name, opts := range map[string]secret.ListOptions{
		"bad prefix": {Prefix: "/x"}, "bad cursor": {After: "a//b"}, "huge limit": {Limit: 100000}, "negative": {Limit: -1},
	} {
		if _, err := e.st.List(ctx, opts); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestFingerprintIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.put(t, "a", "shared-value", secret.PutOptions{})
	e.put(t, "a", "newer", secret.PutOptions{})
	e.put(t, "b", "shared-value", secret.PutOptions{})
	fp := e.st.DetectionKey().Fingerprint([]byte("shared-value"))
	m, err := e.st.LookupFingerprint(ctx, fp)
	if err != nil {
		t.Fatal(err)
	}
	want := []secret.FingerprintMatch{
		{Path: "a", Version: 1, Stages: []secret.Stage{secret.StagePrevious}, State: secret.StateActive},
		{Path: "b", Version: 1, Stages: []secret.Stage{secret.StageCurrent}, State: secret.StateActive},
	}
	if d := cmp.Diff(want, m); d != "" {
		t.Fatalf("lookup (-want +got):\n%s", d)
	}
	_, info := e.get(t, "b", secret.Selector{})
	if info.Fingerprint != fp {
		t.Fatalf("version fingerprint %s, want %s", info.Fingerprint, fp)
	}
	if m, _ := e.st.LookupValue(ctx, []byte("unknown")); len(m) != 0 {
		t.Fatalf("unknown value matched: %v", m)
	}
	for _, bad := range []string{"", "zz", strings.Repeat("a", 63), strings.Repeat("g", 64)} {
		if _, err := e.st.LookupFingerprint(ctx, bad); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("LookupFingerprint(%q) = %v", bad, err)
		}
	}
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	owner, desc := "team-db", "primary database"
	period, _ := secret.ParseDuration("30d")
	e.put(t, "m", "v", secret.PutOptions{Metadata: &secret.MetadataUpdate{Owner: &owner, Tags: map[string]string{"env": "prod", "tier": "1"}}})
	e.now = e.now.Add(1)
	m, err := e.st.UpdateMetadata(ctx, store.Call{Actor: "carol"}, "m", secret.MetadataUpdate{Description: &desc, RotationPeriod: &period, Tags: map[string]string{"tier": ""}, Custom: map[string]string{"ticket": "OPS-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Owner != owner || m.Description != desc || m.RotationPeriod != period || !cmp.Equal(m.Tags, map[string]string{"env": "prod"}) || m.Custom["ticket"] != "OPS-1" {
		t.Fatalf("metadata %+v", m)
	}
	if m.CreatedBy != "bob" || m.UpdatedBy != "carol" || !m.UpdatedAt.After(m.CreatedAt) {
		t.Fatalf("authorship %+v", m)
	}
	tooMany := map[string]string{}
	for i := range secret.MaxTags + 1 {
		tooMany[fmt.Sprintf("k%d", i)] = "v"
	}
	neg := secret.Duration(-1)
	huge := secret.MaxVersionsLimit + 1
	long := strings.Repeat("x", secret.MaxDescriptionLen+1)
	ctrl := "bad\x1bowner"
	for name, u := range map[string]secret.MetadataUpdate{
		"too many tags":     {Tags: tooMany},
		"bad tag key":       {Tags: map[string]string{"a b": "v"}},
		"long tag value":    {Tags: map[string]string{"k": strings.Repeat("v", secret.MaxTagValueLen+1)}},
		"long custom value": {Custom: map[string]string{"k": strings.Repeat("v", secret.MaxCustomValueLen+1)}},
		"negative period":   {RotationPeriod: &neg},
		"max versions":      {MaxVersions: &huge},
		"long description":  {Description: &long},
		"control char":      {Owner: &ctrl},
	} {
		if _, err := e.st.UpdateMetadata(ctx, bob, "m", u); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	s, _ := e.st.Describe(ctx, "m")
	if s.Metadata.Description != desc || len(s.Metadata.Tags) != 1 {
		t.Fatalf("rejected update changed metadata: %+v", s.Metadata)
	}
	if _, err := e.st.UpdateMetadata(ctx, bob, "missing", secret.MetadataUpdate{Owner: &owner}); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("metadata of missing secret: %v", err)
	}
}

// TestStub: an update with Create makes a secret with metadata and no
// version, which reads as having no value until one is put; Create on an
// existing secret is a plain update.
func TestStub(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	owner := "team-db"
	m, err := e.st.UpdateMetadata(ctx, bob, "stub", secret.MetadataUpdate{Owner: &owner, Create: true})
	if err != nil || m.Owner != owner || m.CreatedBy != "bob" || m.CreatedAt.IsZero() {
		t.Fatalf("create stub: %+v, %v", m, err)
	}
	s, err := e.st.Describe(ctx, "stub")
	if err != nil || len(s.Versions) != 0 || s.CurrentVersion != 0 || s.Metadata.Owner != owner {
		t.Fatalf("describe stub: %+v, %v", s, err)
	}
	if _, err := e.st.Get(ctx, "stub", secret.Selector{}); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("read of a stub: %v, want not found", err)
	}
	v := e.put(t, "stub", "value", secret.PutOptions{})
	if v.Version != 1 {
		t.Fatalf("first version of a stub: %+v", v)
	}
	other := "team-app"
	if m, err := e.st.UpdateMetadata(ctx, bob, "stub", secret.MetadataUpdate{Owner: &other, Create: true}); err != nil || m.Owner != other || m.CreatedAt != s.Metadata.CreatedAt {
		t.Fatalf("create on an existing secret: %+v, %v", m, err)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.st.Put(ctx, bob, "../etc/passwd", []byte("v"), secret.PutOptions{}); !errors.Is(err, secret.ErrInvalidPath) {
		t.Fatalf("bad path: %v", err)
	}
	big := bytes.Repeat([]byte("x"), secret.MaxValueSize+1)
	_, err := e.st.Put(ctx, bob, "big", big, secret.PutOptions{})
	if !errors.Is(err, secret.ErrTooLarge) || !strings.Contains(err.Error(), "1 MiB") {
		t.Fatalf("oversize: %v", err)
	}
	e.put(t, "max", strings.Repeat("x", secret.MaxValueSize), secret.PutOptions{})
	neg := -1
	if _, err := e.st.Put(ctx, bob, "k", []byte("v"), secret.PutOptions{CAS: &neg}); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Fatalf("negative CAS: %v", err)
	}
	if _, err := e.st.Put(ctx, bob, "k", []byte("v"), secret.PutOptions{Stage: secret.StagePrevious}); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Fatalf("put as previous: %v", err)
	}
	if _, err := e.st.Describe(ctx, "big"); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("rejected put created a secret: %v", err)
	}
}

// TestCiphertextBoundToPathAndVersion moves sealed values between keys in
// the backend, as an attacker with write access to the file could; each
// must fail to open rather than return another secret's value.
func TestCiphertextBoundToPathAndVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.put(t, "victim", "victim-v1", secret.PutOptions{})
	e.put(t, "victim", "victim-v2", secret.PutOptions{})
	e.put(t, "attacker", "attacker-v1", secret.PutOptions{})
	copyValue := func(from, to []byte) {
		t.Helper()
		if err := e.db.Update(ctx, func(tx store.Tx) error {
			v, err := tx.Get(from)
			if err != nil {
				return err
			}
			return tx.Put(to, bytes.Clone(v))
		}); err != nil {
			t.Fatal(err)
		}
	}
	copyValue([]byte("s/victim\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01"), []byte("s/attacker\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01"))
	if _, err := e.st.Get(ctx, "attacker", secret.Selector{}); !errors.Is(err, secret.ErrCorrupt) {
		t.Fatalf("ciphertext moved across paths opened: %v", err)
	}
	copyValue([]byte("s/victim\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01"), []byte("s/victim\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02"))
	if _, err := e.st.Get(ctx, "victim", secret.Selector{}); !errors.Is(err, secret.ErrCorrupt) {
		t.Fatalf("ciphertext moved across versions opened: %v", err)
	}
}

func TestOpenWithWrongKeyChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.put(t, "k", "v", secret.PutOptions{})
	before, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := keyring.New(e.now)
	_, err = store.Open(ctx, e.db, other, store.Options{})
	if !errors.Is(err, secret.ErrKey) || !strings.Contains(err.Error(), "does not match this store") {
		t.Fatalf("open with wrong key: %v", err)
	}
	after, _ := os.ReadFile(e.path)
	if !bytes.Equal(before, after) {
		t.Fatal("a failed open changed the database file")
	}
	if err := store.Init(ctx, e.db, e.kr, "x", store.Options{}); !errors.Is(err, store.ErrAlreadyInitialized) {
		t.Fatalf("second init: %v", err)
	}
}

func TestRewrapAfterRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for i := range 2500 { // more than one re-wrap batch
		if _, err := e.st.Put(ctx, bob, fmt.Sprintf("s/%04d", i), []byte(fmt.Sprintf("value-%d", i)), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	fpBefore := e.st.DetectionKey().Fingerprint([]byte("x"))
	old := e.kr.Active()
	if _, err := e.kr.Rotate(e.now, nil); err != nil {
		t.Fatal(err)
	}
	rep, err := e.st.Rewrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rewrapped != 2501 || rep.Active == old || !cmp.Equal(rep.Retired, []string{old}) {
		t.Fatalf("rewrap report %+v", rep)
	}
	if rep2, err := e.st.Rewrap(ctx); err != nil || rep2.Rewrapped != 0 {
		t.Fatalf("second rewrap: %+v %v", rep2, err)
	}
	// A keyring with only the new key opens everything, and fingerprints
	// are unchanged because the detection seed was re-wrapped, not replaced.
	if err := e.kr.Remove(old); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, e.db, e.kr, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.DetectionKey().Fingerprint([]byte("x")) != fpBefore {
		t.Fatal("fingerprints changed across key rotation")
	}
	for _, i := range []int{0, 1234, 2499} {
		v, err := st.Get(ctx, fmt.Sprintf("s/%04d", i), secret.Selector{})
		if err != nil || string(v.Value.Reveal()) != fmt.Sprintf("value-%d", i) {
			t.Fatalf("s/%04d after rewrap: %v", i, err)
		}
	}
	info, _ := st.Info(ctx)
	if info.Active != e.kr.Active() || !cmp.Equal(info.Retired, []string{old}) {
		t.Fatalf("store info %+v", info)
	}
}

func TestCASZeroMeansAbsent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	zero := 0
	// A secret with only a pending version has no current one, but exists.
	e.put(t, "p", "pending", secret.PutOptions{Stage: secret.StagePending})
	if _, err := e.st.Put(context.Background(), bob, "p", []byte("v"), secret.PutOptions{CAS: &zero}); !errors.Is(err, secret.ErrConflict) {
		t.Fatalf("CAS 0 on a pending-only secret: %v", err)
	}
}

func TestUnregisteredActiveKeyCannotSeal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.put(t, "k", "v1", secret.PutOptions{})
	// A keyring whose active key the store does not know, as with
	// PASSMAN_MASTER_KEY="typo,real".
	other, _ := keyring.New(e.now)
	mixed, err := keyring.FromEnv(other.EncodeEnv() + "," + e.kr.EncodeEnv())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, e.db, mixed, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := st.Get(ctx, "k", secret.Selector{}); err != nil || string(v.Value.Reveal()) != "v1" {
		t.Fatalf("reads with a known older key: %v", err)
	}
	_, err = st.Put(ctx, bob, "k", []byte("v2"), secret.PutOptions{})
	if !errors.Is(err, secret.ErrKey) || !strings.Contains(err.Error(), "keys rewrap") {
		t.Fatalf("put under an unregistered key: %v", err)
	}
	if s, _ := st.Describe(ctx, "k"); len(s.Versions) != 1 {
		t.Fatalf("refused put wrote a version: %+v", s.Versions)
	}
	if _, err := st.Rewrap(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, bob, "k", []byte("v2"), secret.PutOptions{}); err != nil {
		t.Fatalf("put after rewrap adopted the key: %v", err)
	}
}

func TestPutAppliesMetadataToExistingSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	owner := "team-a"
	e.put(t, "m", "v1", secret.PutOptions{Metadata: &secret.MetadataUpdate{Owner: &owner, Tags: map[string]string{"env": "prod"}}})
	other := "team-b"
	e.put(t, "m", "v2", secret.PutOptions{Metadata: &secret.MetadataUpdate{Owner: &other, Tags: map[string]string{"tier": "1"}}})
	s, err := e.st.Describe(context.Background(), "m")
	if err != nil {
		t.Fatal(err)
	}
	if s.Metadata.Owner != "team-b" || !cmp.Equal(s.Metadata.Tags, map[string]string{"env": "prod", "tier": "1"}) {
		t.Fatalf("metadata after second put: %+v", s.Metadata)
	}
	// A merge that breaks a limit fails the write, which then writes nothing.
	many := map[string]string{}
	for i := range secret.MaxTags {
		many[fmt.Sprintf("t%d", i)] = "v"
	}
	if _, err := e.st.Put(context.Background(), bob, "m", []byte("v3"), secret.PutOptions{Metadata: &secret.MetadataUpdate{Tags: many}}); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Fatalf("put whose tags overflow: %v", err)
	}
	if s, _ := e.st.Describe(context.Background(), "m"); len(s.Versions) != 2 {
		t.Fatalf("refused put wrote a version: %d versions", len(s.Versions))
	}
}

func TestIndexEntries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.put(t, "a", "first", secret.PutOptions{})
	e.put(t, "a", "second!", secret.PutOptions{})
	e.put(t, "a", "third", secret.PutOptions{})
	e.put(t, "b/c", "other", secret.PutOptions{})
	if err := e.st.Destroy(ctx, bob, "a", []int{1}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Delete(ctx, bob, "b/c", nil); err != nil {
		t.Fatal(err)
	}
	all := func(string, *secret.Metadata) bool { return true }
	collect := func(prefix string, allow func(string, *secret.Metadata) bool) []store.IndexEntry {
		t.Helper()
		var got []store.IndexEntry
		err := e.st.IndexEntries(ctx, prefix, allow, func(ie store.IndexEntry) error {
			ie.Value = bytes.Clone(ie.Value) // wiped once fn returns
			got = append(got, ie)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	det := e.st.DetectionKey()
	a2 := store.IndexEntry{Fingerprint: det.Fingerprint([]byte("second!")), Path: "a", Version: 2, Stages: []secret.Stage{secret.StagePrevious}, State: secret.StateActive, Value: []byte("second!")}
	a3 := store.IndexEntry{Fingerprint: det.Fingerprint([]byte("third")), Path: "a", Version: 3, Stages: []secret.Stage{secret.StageCurrent}, State: secret.StateActive, Value: []byte("third")}
	bc := store.IndexEntry{Fingerprint: det.Fingerprint([]byte("other")), Path: "b/c", Version: 1, Stages: []secret.Stage{secret.StageCurrent}, State: secret.StateDeleted, Value: []byte("other")}
	if d := cmp.Diff([]store.IndexEntry{a2, a3, bc}, collect("", all)); d != "" {
		t.Fatalf("index entries (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]store.IndexEntry{bc}, collect("b/", all)); d != "" {
		t.Fatalf("index entries under b/ (-want +got):\n%s", d)
	}
	// A refused secret is asked about once and contributes nothing.
	asked := map[string]int{}
	onlyB := func(p string, md *secret.Metadata) bool { asked[p]++; return md != nil && p == "b/c" }
	if d := cmp.Diff([]store.IndexEntry{bc}, collect("", onlyB)); d != "" || asked["a"] != 1 || asked["b/c"] != 1 {
		t.Fatalf("index entries of b/c only (-want +got):\n%s\nasked %v", d, asked)
	}
	if err := e.st.IndexEntries(ctx, "../", all, func(store.IndexEntry) error { return nil }); !errors.Is(err, secret.ErrInvalidPath) {
		t.Fatalf("bad prefix: %v", err)
	}
}

// TestTrailingNewlineIsIndexedBothWays checks that a value put with a
// trailing newline ("echo pw | passman secret put") is recognised with and
// without it, and that destroy removes both index entries.
func TestTrailingNewlineIsIndexedBothWays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.put(t, "n", "pass-word\n", secret.PutOptions{})
	e.put(t, "crlf", "pass-word2\r\n", secret.PutOptions{})
	e.put(t, "n", "next", secret.PutOptions{})
	for _, v := range []string{"pass-word\n", "pass-word", "pass-word2\r\n", "pass-word2"} {
		if m, err := e.st.LookupValue(ctx, []byte(v)); err != nil || len(m) != 1 {
			t.Errorf("lookup %q: %v %v", v, m, err)
		}
	}
	if m, _ := e.st.LookupValue(ctx, []byte("pass-word2\r")); len(m) != 0 {
		t.Errorf("a half-trimmed CRLF matched: %v", m)
	}
	var values []string
	if err := e.st.IndexEntries(ctx, "", func(string, *secret.Metadata) bool { return true }, func(ie store.IndexEntry) error {
		if ie.Path == "crlf" {
			values = append(values, string(ie.Value))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(values, []string{"pass-word2\r\n", "pass-word2"}) {
		t.Fatalf("exported values of the CRLF value: %q", values)
	}
	if err := e.st.Destroy(ctx, bob, "n", []int{1}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"pass-word\n", "pass-word"} {
		if m, _ := e.st.LookupValue(ctx, []byte(v)); len(m) != 0 {
			t.Errorf("destroyed value %q still indexed: %v", v, m)
		}
	}
}

// TestGetIf checks the check between record and value: it sees the
// metadata the read uses (nil for a missing secret), its error ends the
// read before any value is opened, and with no error the read goes on.
func TestGetIf(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.put(t, "app/db", "v1-value", secret.PutOptions{Metadata: &secret.MetadataUpdate{Owner: ptr("team-db")}})
	// A damaged value: opening it would fail with ErrCorrupt.
	if err := e.db.Update(ctx, func(tx store.Tx) error {
		return tx.Put([]byte("s/app/db\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01"), []byte("garbage"))
	}); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("refused")
	var seen []string
	check := func(md *secret.Metadata) error {
		if md == nil {
			seen = append(seen, "<missing>")
			return nil
		}
		seen = append(seen, md.Owner)
		return refused
	}
	if _, err := e.st.GetIf(ctx, "app/db", secret.Selector{}, check); !errors.Is(err, refused) {
		t.Errorf("refused read: err = %v, want the check's error (and no attempt to open the damaged value)", err)
	}
	if _, err := e.st.GetIf(ctx, "app/none", secret.Selector{}, check); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("missing secret: err = %v, want ErrNotFound after the check", err)
	}
	if want := []string{"team-db", "<missing>"}; !cmp.Equal(seen, want) {
		t.Errorf("check saw %q, want %q", seen, want)
	}
	if _, err := e.st.GetIf(ctx, "app/db", secret.Selector{}, func(*secret.Metadata) error { return nil }); !errors.Is(err, secret.ErrCorrupt) {
		t.Errorf("allowed read of a damaged value: err = %v, want ErrCorrupt", err)
	}
}

func ptr[T any](v T) *T { return &v }
