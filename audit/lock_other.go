//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package audit

import "os"

// lockFile does nothing on platforms without flock: there the caller must
// ensure that only one Log appends to a file.
func lockFile(*os.File) error { return nil }
