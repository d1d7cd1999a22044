package cli

import (
	"encoding/base64"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/secret"
)

// getResult is secret get's JSON shape. Value is the text itself when it is
// valid UTF-8 (Encoding "text"), else standard base64 (Encoding "base64").
type getResult struct {
	Path      string         `json:"path"`
	Version   int            `json:"version"`
	Stages    []secret.Stage `json:"stages"`
	CreatedAt time.Time      `json:"created_at"`
	CreatedBy string         `json:"created_by"`
	Value     string         `json:"value"`
	Encoding  string         `json:"encoding"`
}

func newSecretGetCmd(a *app) *cobra.Command {
	var version int
	var stage string
	cmd := &cobra.Command{
		Use:   "get PATH",
		Short: "Print a secret's value",
		Long: `Print the value of one version of the secret at PATH: the current version,
or the one named by --version or --stage.

This is the only command that ever prints a value. In text output the value's
bytes are written exactly, with no newline added; with -o json the value is a
string (base64 if it is not valid UTF-8, as "encoding" says).`,
		Example: `  passman secret get prod/db/password > password.txt
  passman secret get prod/db/password --stage previous
  passman secret get prod/db/password --version 2 -o json`,
		Args: clibase.ExactArgs("PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			sel, err := selector(cmd, version, stage)
			if err != nil {
				return err
			}
			return a.runGet(cmd, args[0], sel)
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "read version `N`")
	cmd.Flags().StringVar(&stage, "stage", "", "read the version with `STAGE`: current, previous or pending")
	return cmd
}

// selector turns --version and --stage into a Selector; naming both is a
// usage error, since each alone picks a version.
func selector(cmd *cobra.Command, version int, stage string) (secret.Selector, error) {
	fs := cmd.Flags()
	var sel secret.Selector
	if fs.Changed("version") && fs.Changed("stage") {
		return sel, clibase.UsageErrorf("--version and --stage are mutually exclusive")
	}
	if fs.Changed("version") {
		if version < 1 {
			return sel, clibase.UsageErrorf("--version must be 1 or more, got %d", version)
		}
		sel.Version = version
	}
	if fs.Changed("stage") {
		st, err := secret.ParseStage(stage)
		if err != nil {
			return sel, &clibase.UsageError{Err: fmt.Errorf("--stage: %w", err)}
		}
		sel.Stage = st
	}
	return sel, nil
}

func (a *app) runGet(cmd *cobra.Command, path string, sel secret.Selector) error {
	var v secret.Versioned
	err := a.withService(cmd.Context(), func(svc passman.Service) error {
		var err error
		v, err = svc.Get(cmd.Context(), path, sel)
		if err != nil {
			if sel != (secret.Selector{}) {
				return fmt.Errorf("get %s (%s): %w", shownPath(path), sel, err)
			}
			return fmt.Errorf("get %s: %w", shownPath(path), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer v.Value.Wipe()
	if a.Out.Format == clibase.FormatJSON {
		res := getResult{
			Path:      v.Path,
			Version:   v.Info.Version,
			Stages:    v.Info.Stages,
			CreatedAt: v.Info.CreatedAt,
			CreatedBy: v.Info.CreatedBy,
		}
		if res.Stages == nil {
			res.Stages = []secret.Stage{}
		}
		// The one place a value is deliberately revealed for output.
		if b := v.Value.Reveal(); utf8.Valid(b) {
			res.Value, res.Encoding = string(b), "text"
		} else {
			res.Value, res.Encoding = base64.StdEncoding.EncodeToString(b), "base64"
		}
		return a.Out.Emit(res, nil)
	}
	if _, err := a.Out.W.Write(v.Value.Reveal()); err != nil {
		return fmt.Errorf("write value: %w", err)
	}
	return nil
}
