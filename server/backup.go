package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/backup"
	"github.com/passman-dev/passman/secret"
)

// stream is a route's answer that is not JSON: body is copied to the
// client after the headers, and closed.
type stream struct {
	contentType string
	size        int64
	body        io.ReadCloser
}

// serveBackup answers a consistent backup of the store. The Service
// authorizes and audits it before writing a byte; the backup is spooled
// to a private temporary file first, so the store's read transaction
// lasts as long as a local copy takes, not as long as the client takes
// to read it.
func serveBackup(h *handler, ctx context.Context, c *call) (any, error) {
	var opts backup.Options
	switch v := c.r.URL.Query().Get(api.QueryLogical); v {
	case "", "false":
	case "true":
		opts.Logical = true
	default:
		return nil, fmt.Errorf("%w: %s must be true or false", secret.ErrInvalidArgument, api.QueryLogical)
	}
	f, err := os.CreateTemp("", "passman-backup-*")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	// Unlinked at once: nothing else can open it, and it goes with the
	// descriptor whatever happens.
	os.Remove(f.Name())
	if _, err := h.svc.Backup(ctx, f, opts); err != nil {
		f.Close()
		return nil, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("backup: %w", err)
	}
	return &stream{contentType: "application/octet-stream", size: size, body: f}, nil
}

// writeStream sends s. A failure midway (the client went away) cannot
// change the status any more; the backup's checksum tells a client that
// what it got is incomplete.
func writeStream(w http.ResponseWriter, s *stream) {
	defer s.body.Close()
	w.Header().Set("Content-Type", s.contentType)
	w.Header().Set("Content-Length", strconv.FormatInt(s.size, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, s.body)
}

// serveSchedulerStatus answers the scheduler's record, with the leader
// named live by the election when the server has one.
func serveSchedulerStatus(h *handler, ctx context.Context, _ *call) (any, error) {
	st, err := h.svc.SchedulerStatus(ctx)
	if err != nil {
		return nil, err
	}
	if h.leadership != nil {
		if leader, err := h.leadership.Leader(ctx); err == nil {
			if leader != st.Leader {
				// Elected and not yet recorded: since when is unknown.
				st.LeaderSince = time.Time{}
			}
			st.Leader, st.Live = leader, true
		}
	}
	return st, nil
}
