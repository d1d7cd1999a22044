package cli

import "os"

// isTerminal reports whether f looks like an interactive terminal, so that
// secret put can refuse to sit waiting for a value nobody will pipe in.
// It uses only the standard library: a terminal is a character device, and
// /dev/null, the usual non-terminal character device on stdin (cron, CI,
// "< /dev/null"), is excluded. Other character devices also count as
// terminals; they make no sense as a secret's source anyway.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}
