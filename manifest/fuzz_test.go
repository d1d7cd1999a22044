package manifest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/passman-dev/passman/manifest"
	"github.com/passman-dev/passman/secret"
)

var positioned = regexp.MustCompile(`^passman\.yaml:[1-9][0-9]*:[1-9][0-9]*: \S`)

// FuzzParse checks, for any input: no panic; every problem is reported
// as "passman.yaml:line:col: message" in printable text; anything
// accepted re-validates, makes a lint document, and passes the JSON
// Schema (the schema is never stricter than the decoder).
func FuzzParse(f *testing.F) {
	for _, c := range loadCases(f) {
		f.Add(c.data)
	}
	if b, err := os.ReadFile(filepath.Join("testdata", "golden", "scenario.yaml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte(billionLaughs()))
	sch := compileSchema(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang is a failure too; the fuzzer keeps a crashing input.
		watchdog := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("Parse hangs on %q", data)) })
		m, err := manifest.Parse("passman.yaml", data)
		watchdog.Stop()
		if err != nil {
			if errors.Is(err, secret.ErrTooLarge) {
				return
			}
			if !errors.Is(err, secret.ErrInvalidArgument) {
				t.Fatalf("error is not ErrInvalidArgument: %v", err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !positioned.MatchString(line) {
					t.Fatalf("error line without position: %q", line)
				}
				if !utf8.ValidString(line) || strings.ContainsFunc(line, unicode.IsControl) {
					t.Fatalf("error line is not printable: %q", line)
				}
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted manifest does not re-validate: %v", err)
		}
		for _, s := range m.Secrets {
			if s.Line < 1 || s.Column < 1 {
				t.Fatalf("secret %s has no position", s.Path)
			}
		}
		if _, err := json.Marshal(m.LintDocument()); err != nil {
			t.Fatalf("lint document: %v", err)
		}
		if ok, err := schemaAccepts(sch, data); err != nil && !errors.Is(err, errNotJSON) || err == nil && !ok {
			t.Fatalf("decoder accepts what the schema rejects: %v", err)
		}
	})
}
