package audit

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/passman-dev/passman/secret"
)

// A FIFO opens without error on Linux but would block readers and lose the
// chain; Open must insist on a regular file.
func TestOpenRejectsFIFO(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	_, err := Open(context.Background(), path, Options{})
	if !errors.Is(err, secret.ErrAudit) || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Open of a FIFO: error %v, want ErrAudit (not a regular file)", err)
	}
}
