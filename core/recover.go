package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/internal/fsx"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

// RecoverLog writes server id's audit chain, as the shared store b holds
// it, to a new log file at path: what replaces the log of a server whose
// disk was lost, so that it goes on under its own id (or an auditor reads
// its chain). path must not exist; nothing is ever overwritten. The chain
// is written beside path, synced and verified there against the head the
// store recorded (its signature checked with kr; nil checks the chain
// only, and the report warns), and only a chain that verifies is moved
// into place. The report is that verification's.
func RecoverLog(ctx context.Context, b store.Backend, kr *keyring.Keyring, id, path string) (audit.Report, error) {
	if !serverIDPattern().MatchString(id) {
		return audit.Report{}, fmt.Errorf("%w: server id %q: 1 to 64 characters a-z, 0-9, '.', '_' and '-'", secret.ErrInvalidArgument, id)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		return audit.Report{}, fmt.Errorf("%w: %s already exists: a recovered log never replaces a file", secret.ErrPrecondition, path)
	}
	head, err := store.ReadMeta(ctx, b, clusterHeadPrefix+id)
	if err != nil {
		return audit.Report{}, fmt.Errorf("read the audit head of server %s: %w", id, err)
	}
	found, err := replicaBeyond(ctx, b, id, 0)
	if err != nil {
		return audit.Report{}, err
	}
	if head == nil && !found {
		return audit.Report{}, fmt.Errorf("%w: the store holds no audit chain of server %s", secret.ErrNotFound, id)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".recover-")
	if err != nil {
		return audit.Report{}, fmt.Errorf("recover audit log: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	err = ReadReplica(ctx, b, id, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return audit.Report{}, fmt.Errorf("recover audit log of server %s: %w", id, err)
	}
	rep, err := verifyChain(ctx, rawMeta{b, kr}, clusterHeadPrefix+id, func(anchor audit.Head) (audit.Report, error) {
		return audit.Verify(ctx, tmp, anchor)
	})
	if err != nil {
		return rep, fmt.Errorf("the audit chain of server %s in the store does not verify, so no log was written: %w", id, err)
	}
	// A link, not a rename: it fails if path appeared meanwhile.
	if err := os.Link(tmp, path); err != nil {
		return rep, fmt.Errorf("recover audit log: %w", err)
	}
	return rep, fsx.SyncDir(dir)
}
