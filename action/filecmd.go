package action

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// fileCommand appends NAME=VALUE entries to one of the runner's file
// commands ($GITHUB_ENV, $GITHUB_OUTPUT, $GITHUB_STATE).
//
// Why not go-githubactions' SetEnv/SetOutput/SaveState: v1.3.0 writes
// every value between a fixed delimiter ("_GitHubActionsFileCommandDelimeter_").
// A value containing a line equal to that delimiter ends the entry early,
// and the lines after it are read by the runner as further NAME=VALUE
// entries: a secret's or a pull request's text could set LD_PRELOAD,
// NODE_OPTIONS or BASH_ENV for every later step. GitHub's own toolkit uses
// a random delimiter per value (actions/toolkit, "ghadelimiter_<uuid>"),
// which is what this does, and it refuses a value that contains the
// delimiter or a name that could itself break the format.
type fileCommand struct {
	path string
	// delim returns a fresh delimiter; tests replace it to force a
	// collision.
	delim func() (string, error)
}

func newFileCommand(path string) *fileCommand {
	return &fileCommand{path: path, delim: randomDelimiter}
}

func randomDelimiter() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random delimiter: %w", err)
	}
	return "ghadelimiter_" + hex.EncodeToString(b[:]), nil
}

// errUnsafeName is a name the file-command format cannot carry safely.
var errUnsafeName = errors.New("unsafe name")

// validName says whether name can be written as a file command's key:
// no "=", no "<<", no line break, not empty.
func validName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "=\r\n") && !strings.Contains(name, "<<")
}

// set appends name=value. The value never appears in an error.
func (f *fileCommand) set(name, value string) error {
	if f.path == "" {
		return fmt.Errorf("file command for %s: the runner gave no file (not inside a GitHub Actions step?)", name)
	}
	if !validName(name) {
		return fmt.Errorf("file command: %w %q", errUnsafeName, name)
	}
	d, err := f.delim()
	if err != nil {
		return err
	}
	if strings.Contains(value, d) || strings.Contains(name, d) {
		return fmt.Errorf("file command for %s: the value contains the delimiter; refused", name)
	}
	file, err := os.OpenFile(f.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("file command for %s: %w", name, err)
	}
	// One write, so a concurrent reader never sees half an entry.
	_, werr := file.WriteString(name + "<<" + d + "\n" + value + "\n" + d + "\n")
	cerr := file.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("file command for %s: %w", name, err)
	}
	return nil
}
