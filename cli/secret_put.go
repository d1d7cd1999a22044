package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/generator"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/secret"
)

type putFlags struct {
	file     string
	generate bool
	length   int
	classes  string
	cas      int
	pending  bool
	meta     metaFlags
}

func newSecretPutCmd(a *app) *cobra.Command {
	var f putFlags
	cmd := &cobra.Command{
		Use:   "put PATH",
		Short: "Write a new version of a secret",
		Long: `Write a new version of the secret at PATH.

The value is read from standard input (the default), from --file, or generated
with --generate. There is no --value flag, and a value is never taken from an
argument: arguments end up in shell history and process listings. The value is
stored byte for byte, including any trailing newline (use printf '%s' rather
than echo to avoid one). A generated value is never printed; read it with
'passman secret get'.

If standard input is a terminal, put fails instead of waiting for input.

The metadata flags apply only when this write creates the secret; change an
existing secret's metadata with 'passman secret meta'.`,
		Example: `  passman secret put prod/db/password < password.txt
  vault-export | passman secret put prod/db/password --cas 3
  passman secret put prod/api/token --generate --length 40 --classes upper,lower,digits
  passman secret put prod/db/password --file new.txt --pending`,
		Args: clibase.ExactArgs("PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runPut(cmd, args[0], &f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.file, "file", "", "read the value from `FILE` instead of standard input")
	fs.BoolVar(&f.generate, "generate", false, "generate a random value (never printed)")
	fs.IntVar(&f.length, "length", generator.DefaultLength, "length of a generated value")
	fs.StringVar(&f.classes, "classes", "upper,lower,digits", "character classes of a generated value: upper, lower, digits, symbols")
	fs.IntVar(&f.cas, "cas", 0, "check-and-set: write only if the current version is `N` (0: only if the secret does not exist)")
	fs.BoolVar(&f.pending, "pending", false, "stage the new version as pending instead of making it current")
	f.meta.register(fs)
	return cmd
}

func (a *app) runPut(cmd *cobra.Command, path string, f *putFlags) error {
	fs := cmd.Flags()
	if f.file != "" && f.generate {
		return clibase.UsageErrorf("--file and --generate are mutually exclusive")
	}
	if !f.generate && (fs.Changed("length") || fs.Changed("classes")) {
		return clibase.UsageErrorf("--length and --classes need --generate")
	}
	opts := secret.PutOptions{}
	if fs.Changed("cas") {
		opts.CAS = &f.cas
	}
	if f.pending {
		opts.Stage = secret.StagePending
	}
	meta, err := f.meta.build(fs)
	if err != nil {
		return err
	}
	opts.Metadata = meta
	var put func(svc passman.Service) (secret.VersionInfo, error)
	if f.generate {
		classes, err := generator.ParseClasses(f.classes)
		if err != nil {
			return &clibase.UsageError{Err: fmt.Errorf("--classes: %w", err)}
		}
		spec := generator.Spec{Length: f.length, Classes: classes}
		if _, err := spec.Normalize(); err != nil {
			return &clibase.UsageError{Err: err}
		}
		put = func(svc passman.Service) (secret.VersionInfo, error) {
			return generator.Put(cmd.Context(), svc, path, spec, opts)
		}
	} else {
		// Read the value before opening the store, so bad input fails
		// fast and the store is locked only for the write.
		value, err := a.putValue(f)
		if err != nil {
			return err
		}
		defer value.Wipe()
		put = func(svc passman.Service) (secret.VersionInfo, error) {
			return svc.Put(cmd.Context(), path, value, opts)
		}
	}
	var info secret.VersionInfo
	err = a.withService(cmd.Context(), func(svc passman.Service) error {
		info, err = put(svc)
		if err != nil {
			return fmt.Errorf("put %s: %w", shownPath(path), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return a.Out.Emit(versionResult{Path: path, VersionInfo: info}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s: %s\n", path, versionText(info))
		return err
	})
}

// putValue gets the value to write from the file or standard input.
func (a *app) putValue(f *putFlags) (secret.Value, error) {
	switch {
	case f.file != "":
		file, err := os.Open(f.file)
		if err != nil {
			return secret.Value{}, clibase.UsageErrorf("--file: %w", err)
		}
		defer file.Close() // read-only: a close error loses nothing
		b, err := readValue(file)
		if err != nil {
			return secret.Value{}, fmt.Errorf("read value from %s: %w", f.file, err)
		}
		return secret.NewValue(b), nil
	default:
		if a.Env.StdinIsTerminal != nil && a.Env.StdinIsTerminal() {
			return secret.Value{}, clibase.UsageErrorf("standard input is a terminal; pipe the value in (passman secret put PATH < file) or use --file or --generate")
		}
		if a.Env.Stdin == nil {
			return secret.Value{}, clibase.UsageErrorf("no standard input; use --file or --generate")
		}
		b, err := readValue(a.Env.Stdin)
		if err != nil {
			return secret.Value{}, fmt.Errorf("read value from standard input: %w", err)
		}
		return secret.NewValue(b), nil
	}
}

// readValue reads at most one byte more than a value may hold: enough for
// the core to see that it is too large and say so, without reading an
// unbounded stream into memory.
func readValue(r io.Reader) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, secret.MaxValueSize+1))
}

// versionResult is the JSON shape of a write's result: the path with the
// version's description (never its value).
type versionResult struct {
	Path string `json:"path"`
	secret.VersionInfo
}

// versionText renders "version 3 (current)".
func versionText(info secret.VersionInfo) string {
	if len(info.Stages) == 0 {
		return fmt.Sprintf("version %d", info.Version)
	}
	return fmt.Sprintf("version %d (%s)", info.Version, joinStages(info.Stages))
}
