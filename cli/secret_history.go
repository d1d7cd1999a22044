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

// shortFingerprint is how many hex digits of a fingerprint text output
// shows: enough to tell versions apart by eye, short enough for a table.
const shortFingerprint = 12

// historyResult is secret history's JSON shape.
type historyResult struct {
	Path           string               `json:"path"`
	CurrentVersion int                  `json:"current_version"`
	Versions       []secret.VersionInfo `json:"versions"`
}

func newSecretHistoryCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "history PATH",
		Short: "Show a secret's versions",
		Long: `Show every kept version of the secret at PATH, oldest first, with its state,
stages and value fingerprint (a keyed hash: it tells versions apart without
revealing them). Text output shortens fingerprints; JSON has them whole.`,
		Args: clibase.ExactArgs("PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.describe(cmd, args[0])
			if err != nil {
				return err
			}
			res := historyResult{Path: s.Path, CurrentVersion: s.CurrentVersion, Versions: s.Versions}
			if res.Versions == nil {
				res.Versions = []secret.VersionInfo{}
			}
			return a.Out.Emit(res, func(w io.Writer) error {
				t := newTable(w, "VERSION", "CREATED", "CREATED-BY", "STATE", "STAGES", "FINGERPRINT")
				for _, v := range s.Versions {
					fp := v.Fingerprint
					if len(fp) > shortFingerprint {
						fp = fp[:shortFingerprint]
					}
					t.row(strconv.Itoa(v.Version), timeText(v.CreatedAt), v.CreatedBy, string(v.State), joinStages(v.Stages), fp)
				}
				return t.flush()
			})
		},
	}
}

// describe fetches a secret's metadata and versions.
func (a *app) describe(cmd *cobra.Command, path string) (secret.Secret, error) {
	var s secret.Secret
	err := a.withService(cmd.Context(), func(svc passman.Service) error {
		var err error
		s, err = svc.Describe(cmd.Context(), path)
		if err != nil {
			return fmt.Errorf("describe %s: %w", shownPath(path), err)
		}
		return nil
	})
	return s, err
}
