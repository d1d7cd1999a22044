package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

var errRefused = errors.New("refused")

// TestAllowDecidesEveryMutation: every mutation of a secret asks
// Call.Allow about the metadata it loaded, before its own checks, and a
// refusal writes nothing. The cases include changes the store itself
// would refuse (a current version destroyed, a failed check-and-set, a
// version that does not exist): the refusal comes first, so its answer
// does not depend on the secret's state.
func TestAllowDecidesEveryMutation(t *testing.T) {
	ctx := context.Background()
	zero, cas := 0, 9
	owner := "team-app"
	muts := []struct {
		name string
		run  func(e *env, c store.Call, path string) error
	}{
		{"put", func(e *env, c store.Call, p string) error {
			_, err := e.st.Put(ctx, c, p, []byte("new"), secret.PutOptions{})
			return err
		}},
		{"put cas 0", func(e *env, c store.Call, p string) error {
			_, err := e.st.Put(ctx, c, p, []byte("new"), secret.PutOptions{CAS: &zero})
			return err
		}},
		{"put cas mismatch", func(e *env, c store.Call, p string) error {
			_, err := e.st.Put(ctx, c, p, []byte("new"), secret.PutOptions{CAS: &cas})
			return err
		}},
		{"rollback", func(e *env, c store.Call, p string) error {
			_, err := e.st.Rollback(ctx, c, p, 1)
			return err
		}},
		{"rollback missing version", func(e *env, c store.Call, p string) error {
			_, err := e.st.Rollback(ctx, c, p, 42)
			return err
		}},
		{"delete", func(e *env, c store.Call, p string) error { return e.st.Delete(ctx, c, p, nil) }},
		{"undelete", func(e *env, c store.Call, p string) error { return e.st.Undelete(ctx, c, p, []int{1}) }},
		{"destroy current", func(e *env, c store.Call, p string) error { return e.st.Destroy(ctx, c, p, []int{2}) }},
		{"purge", func(e *env, c store.Call, p string) error { return e.st.Purge(ctx, c, p) }},
		{"stage", func(e *env, c store.Call, p string) error {
			return e.st.SetStage(ctx, c, p, secret.StageCurrent, 1)
		}},
		{"metadata", func(e *env, c store.Call, p string) error {
			_, err := e.st.UpdateMetadata(ctx, c, p, secret.MetadataUpdate{Owner: &owner})
			return err
		}},
		{"metadata create", func(e *env, c store.Call, p string) error {
			_, err := e.st.UpdateMetadata(ctx, c, p, secret.MetadataUpdate{Owner: &owner, Create: true})
			return err
		}},
	}
	for _, m := range muts {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.put(t, "app/key", "one", secret.PutOptions{Metadata: &secret.MetadataUpdate{Owner: &owner}})
			e.put(t, "app/key", "two", secret.PutOptions{})
			before, err := e.st.Describe(ctx, "app/key")
			if err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{"app/key", "app/missing"} {
				var seen []*secret.Metadata
				c := store.Call{Actor: "mallory", Allow: func(md *secret.Metadata) error {
					if md != nil {
						cp := *md
						md = &cp
					}
					seen = append(seen, md)
					return errRefused
				}, Commit: func(store.Tx, store.Event) error {
					t.Errorf("%s: a refused change reached its commit", path)
					return nil
				}}
				if err := m.run(e, c, path); !errors.Is(err, errRefused) {
					t.Errorf("%s: %v, want the refusal", path, err)
				}
				if len(seen) != 1 {
					t.Fatalf("%s: Allow ran %d times, want once", path, len(seen))
				}
				switch {
				case path == "app/missing" && seen[0] != nil:
					t.Errorf("%s: Allow saw %+v, want nil for a missing secret", path, seen[0])
				case path == "app/key" && (seen[0] == nil || seen[0].Owner != owner || seen[0].UpdatedBy != "bob"):
					t.Errorf("%s: Allow saw %+v, want the stored metadata", path, seen[0])
				}
			}
			after, err := e.st.Describe(ctx, "app/key")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("a refused change changed the secret (-before +after):\n%s", diff)
			}
			if _, err := e.st.Metadata(ctx, "app/missing"); !errors.Is(err, secret.ErrNotFound) {
				t.Errorf("a refused change created the missing secret: %v", err)
			}
			allowed := 0
			c := store.Call{Actor: "bob", Allow: func(*secret.Metadata) error { allowed++; return nil }}
			m.run(e, c, "app/key")
			if allowed != 1 {
				t.Errorf("an allowing Allow ran %d times, want once", allowed)
			}
		})
	}
}

// TestAllowNotAskedBeforeValidation: what a mutation refuses before its
// transaction (an empty value, a bad stage) is refused without asking
// Allow; the caller asks its policy on its own then.
func TestAllowNotAskedBeforeValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	asked := false
	c := store.Call{Actor: "bob", Allow: func(*secret.Metadata) error { asked = true; return errRefused }}
	if _, err := e.st.Put(ctx, c, "app/key", nil, secret.PutOptions{}); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("empty value: %v", err)
	}
	if err := e.st.SetStage(ctx, c, "app/key", "nonsense", 1); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("bad stage: %v", err)
	}
	if asked {
		t.Error("Allow was asked about a change refused before its transaction")
	}
}
