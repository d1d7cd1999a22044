package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DevRootTokenTTL is the life of a dev server's root token. A dev server
// is a working session; a root token that never expired would outlive it
// wherever it was pasted, and a dev server killed before it could clean up
// used to leave one behind, with the store and key it opens.
const DevRootTokenTTL = 8 * time.Hour

// Dev directories a dev server makes in the temporary directory, and how
// a later one tells the live from those of dead processes.
const (
	devDirPrefix = "passman-dev-"
	// devLockFile is flocked by the dev server for as long as it runs: the
	// kernel releases the lock when the process dies, SIGKILL included, so
	// a lock file nobody holds marks a directory to remove.
	devLockFile = "passman-dev.lock"
	// devLegacyAge: a directory without a lock file (an older passman's)
	// is judged by its database's lock, and only once older than this,
	// since its database is briefly closed while the server sets up.
	devLegacyAge = time.Minute
)

// sweepDevDirs removes the dev directories in tmp that dead dev servers
// left behind (killed before they could remove them): only directories
// (never symlinks) owned by this user, whose lock is free. It is best
// effort: a directory it cannot judge or remove stays.
func sweepDevDirs(ctx context.Context, tmp string, log *slog.Logger) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), devDirPrefix) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || !ownedByMe(fi) {
			continue
		}
		lock := filepath.Join(dir, devLockFile)
		if _, err := os.Lstat(lock); err != nil {
			if time.Since(fi.ModTime()) < devLegacyAge {
				continue
			}
			lock = filepath.Join(dir, "store", "passman.db")
		}
		release, free := tryLock(lock)
		if !free {
			continue
		}
		err = os.RemoveAll(dir)
		release()
		if err != nil {
			log.LogAttrs(ctx, slog.LevelWarn, "cannot remove a dead dev server's directory", slog.String("dir", dir), slog.String("error", err.Error()))
			continue
		}
		log.LogAttrs(ctx, slog.LevelInfo, "removed a dead dev server's directory", slog.String("dir", dir))
	}
}
