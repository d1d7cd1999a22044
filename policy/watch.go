package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/passman-dev/passman/secret"
)

// watchDebounce gathers the burst of events one save produces (editors
// write a temp file, rename it, touch it) into one reload.
const watchDebounce = 200 * time.Millisecond

// Watch reloads the policies whenever a file under Options.Dir changes
// (replacing the directory itself, as some deploy tools do, is not seen:
// call Reload then),
// until ctx is done. Each reload attempt is reported to report (nil error:
// the new set is live; an error: the old set stays, as with Reload). It
// returns once the watch is set up, or with an error if it cannot be; the
// watching goroutine ends with ctx.
func (e *Engine) Watch(ctx context.Context, report func(revision string, err error)) error {
	if e.dir == "" {
		return fmt.Errorf("%w: no policy directory to watch", secret.ErrInvalidArgument)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch policies: %w", err)
	}
	if err := addTree(w, e.dir); err != nil {
		w.Close()
		return fmt.Errorf("watch policies: %w", err)
	}
	go e.watchLoop(ctx, w, report)
	return nil
}

// addTree watches dir and its non-hidden subdirectories: fsnotify watches
// one directory at a time.
func addTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		return w.Add(p)
	})
}

func (e *Engine) watchLoop(ctx context.Context, w *fsnotify.Watcher, report func(string, error)) {
	defer w.Close()
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Op&fsnotify.Create != 0 && !strings.HasPrefix(filepath.Base(ev.Name), ".") {
				// A new subdirectory must be watched too; a file is harmless.
				_ = addTree(w, ev.Name)
			}
			timer = time.After(watchDebounce)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			report(e.Revision(), fmt.Errorf("watch policies: %w", err))
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: reload rather than miss a change.
				timer = time.After(watchDebounce)
			}
		case <-timer:
			timer = nil
			err := e.Reload(ctx)
			if errors.Is(err, context.Canceled) {
				return
			}
			report(e.Revision(), err)
		}
	}
}
