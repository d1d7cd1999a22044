package server_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
)

func TestLoadFileTokenRetention(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fc, err := server.LoadFile(write("ok.yaml", "token_retention: 36h\n"))
	if err != nil || time.Duration(fc.TokenRetention) != 36*time.Hour {
		t.Fatalf("token_retention 36h: %v, %v", time.Duration(fc.TokenRetention), err)
	}
	for name, text := range map[string]string{
		"not a duration": "token_retention: soon\n",
		"a list":         "token_retention: [1h]\n",
		"misspelt":       "token_retension: 1h\n",
	} {
		if _, err := server.LoadFile(write(name+".yaml", text)); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("%s: %v, want invalid argument", name, err)
		}
	}
}
