package cli

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/secret"
)

// metaResult is secret meta's JSON shape.
type metaResult struct {
	Path     string          `json:"path"`
	Metadata secret.Metadata `json:"metadata"`
}

func newSecretMetaCmd(a *app) *cobra.Command {
	f := metaFlags{update: true}
	cmd := &cobra.Command{
		Use:   "meta PATH",
		Short: "Show or change a secret's metadata",
		Long: `Show the metadata of the secret at PATH or, with any of the flags, change it
and show the result. Tags and custom fields are merged: --tag sets one,
--untag removes one, and the others stay.

Metadata is stored unencrypted and policies can read it: never put secret
material in it.`,
		Example: `  passman secret meta prod/db/password
  passman secret meta prod/db/password --owner team-db --tag env=prod --untag temp
  passman secret meta prod/db/password --rotation-period 30d --max-versions 20`,
		Args: clibase.ExactArgs("PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			u, err := f.build(cmd.Flags())
			if err != nil {
				return err
			}
			var m secret.Metadata
			if u == nil {
				s, err := a.describe(cmd, path)
				if err != nil {
					return err
				}
				m = s.Metadata
			} else {
				err = a.withService(cmd.Context(), func(svc passman.Service) error {
					m, err = svc.UpdateMetadata(cmd.Context(), path, *u)
					if err != nil {
						return fmt.Errorf("update metadata of %s: %w", shownPath(path), err)
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			return a.Out.Emit(metaResult{Path: path, Metadata: m}, func(w io.Writer) error {
				return metaText(w, path, m)
			})
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func metaText(w io.Writer, path string, m secret.Metadata) error {
	maxVersions := strconv.Itoa(m.MaxVersions)
	if m.MaxVersions == 0 {
		maxVersions = fmt.Sprintf("%d (default)", secret.DefaultMaxVersions)
	}
	t := newTable(w, "path:", path)
	t.row("owner:", m.Owner)
	t.row("description:", m.Description)
	t.row("tags:", sortedPairs(m.Tags))
	t.row("custom:", sortedPairs(m.Custom))
	t.row("rotation period:", m.RotationPeriod.String())
	t.row("max versions:", maxVersions)
	t.row("created:", byline(timeText(m.CreatedAt), m.CreatedBy))
	t.row("updated:", byline(timeText(m.UpdatedAt), m.UpdatedBy))
	return t.flush()
}

func byline(when, who string) string {
	if who == "" {
		return when
	}
	return when + " by " + who
}
