package core_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/scheduler"
	"github.com/passman-dev/passman/secret"
)

// TestScheduledCallsAuthorized: every call of the scheduler's view is
// decided by the policy, as the scheduler subject: a user deny rule
// against it refuses them all, and changes nothing.
func TestScheduledCallsAuthorized(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	opts.PolicyDir = t.TempDir()
	deny := "package passman.authz\n\ndeny contains \"no scheduler here\" if input.subject.kind == \"scheduler\"\n"
	if err := os.WriteFile(filepath.Join(opts.PolicyDir, "deny.rego"), []byte(deny), 0o600); err != nil {
		t.Fatal(err)
	}
	l := open(t, opts)
	t.Cleanup(func() { l.Close() })
	s := l.Scheduled()
	calls := map[string]func() error{
		"RotateDue":       func() error { _, err := s.RotateDue(ctx, rotation.DueOptions{}); return err },
		"ReapTokens":      func() error { _, err := s.ReapTokens(ctx, time.Hour); return err },
		"RecordLead":      func() error { return s.RecordLead(ctx, "n", time.Now()) },
		"RecordRun":       func() error { return s.RecordRun(ctx, scheduler.Run{Node: "n"}) },
		"SchedulerStatus": func() error { _, err := s.SchedulerStatus(ctx); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, secret.ErrPermissionDenied) {
			t.Errorf("%s: %v, want permission denied", name, err)
		}
	}
	st, err := l.SchedulerStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Leader != "" || len(st.Runs) != 0 {
		t.Errorf("a refused scheduler recorded %+v", st)
	}
}
