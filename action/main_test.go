package action

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/passman-dev/passman/internal/regalexec"
	"github.com/passman-dev/passman/internal/regalserve"
)

// regalDir is the directory TestMain put first on PATH.
var regalDir string

// TestMain provides passman-regal as the cli tests do: the test binary,
// run under that name, is the lint program. The policy command finds it
// on PATH (regalexec.Find), as a runner finds the one installed beside
// passman; Regal itself is never linked into the action's code.
func TestMain(m *testing.M) {
	if strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe") == regalexec.Program {
		os.Exit(regalserve.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	dir, err := os.MkdirTemp("", "passman-action-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := 2
	if err := provideRegal(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// provideRegal puts a copy of the test binary named passman-regal in dir
// and dir first on PATH.
func provideRegal(dir string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("test binary: %w", err)
	}
	name := regalexec.Program
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	dst := filepath.Join(dir, name)
	if err := os.Symlink(self, dst); err != nil {
		if err := copyFile(self, dst); err != nil {
			return fmt.Errorf("provide %s: %w", regalexec.Program, err)
		}
	}
	regalDir = dir
	return os.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// environWithoutRegal is the environment less TestMain's passman-regal,
// for a run that must find the one delivered beside passman.
func environWithoutRegal() []string {
	env := os.Environ()
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			env[i] = "PATH=" + strings.TrimPrefix(v, regalDir+string(os.PathListSeparator))
		}
	}
	return env
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
