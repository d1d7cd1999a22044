package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/secret"
)

// changeResult is the JSON shape of a version lifecycle change. Versions
// is empty when the change applied to the current version (delete without
// --versions) or the whole secret (destroy --all).
type changeResult struct {
	Path     string `json:"path"`
	Action   string `json:"action"`
	Versions []int  `json:"versions,omitempty"`
	Stage    string `json:"stage,omitempty"`
}

// rollbackResult is secret rollback's JSON shape.
type rollbackResult struct {
	Path string `json:"path"`
	secret.VersionInfo
	RolledBackFrom int `json:"rolled_back_from"`
}

func newSecretRollbackCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback PATH VERSION",
		Short: "Make an older version's value current again",
		Long: `Write the value of VERSION back as a new current version of PATH. History is
never rewritten: the rollback is itself a new version.`,
		Args: clibase.ExactArgs("PATH", "VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			from, err := parseVersion("VERSION", args[1])
			if err != nil {
				return err
			}
			var info secret.VersionInfo
			err = a.withService(cmd.Context(), func(svc passman.Service) error {
				info, err = svc.Rollback(cmd.Context(), path, from)
				if err != nil {
					return fmt.Errorf("roll back %s to version %d: %w", shownPath(path), from, err)
				}
				return nil
			})
			if err != nil {
				return err
			}
			return a.Out.Emit(rollbackResult{Path: path, VersionInfo: info, RolledBackFrom: from}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s: %s, the value of version %d\n", path, versionText(info), from)
				return err
			})
		},
	}
}

func newSecretDeleteCmd(a *app) *cobra.Command {
	var versions []int
	cmd := &cobra.Command{
		Use:   "delete PATH",
		Short: "Soft-delete versions (undo with undelete)",
		Long: `Soft-delete versions of PATH: the current version unless --versions names
others. A deleted version's value cannot be read until it is undeleted; to
remove values for good use 'passman secret destroy'.`,
		Args: clibase.ExactArgs("PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkVersions(versions); err != nil {
				return err
			}
			return a.changeVersions(cmd, "delete", changeResult{Path: args[0], Action: "deleted", Versions: versions}, func(svc passman.Service) error {
				return svc.Delete(cmd.Context(), args[0], versions)
			})
		},
	}
	cmd.Flags().IntSliceVar(&versions, "versions", nil, "versions to delete, such as 1,2 (default: the current version)")
	return cmd
}

func newSecretUndeleteCmd(a *app) *cobra.Command {
	var versions []int
	cmd := &cobra.Command{
		Use:   "undelete PATH --versions N[,N...]",
		Short: "Restore soft-deleted versions",
		Args:  clibase.ExactArgs("PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(versions) == 0 {
				return clibase.UsageErrorf("name the versions to restore with --versions")
			}
			if err := checkVersions(versions); err != nil {
				return err
			}
			return a.changeVersions(cmd, "undelete", changeResult{Path: args[0], Action: "undeleted", Versions: versions}, func(svc passman.Service) error {
				return svc.Undelete(cmd.Context(), args[0], versions)
			})
		},
	}
	cmd.Flags().IntSliceVar(&versions, "versions", nil, "versions to restore, such as 1,2")
	return cmd
}

func newSecretDestroyCmd(a *app) *cobra.Command {
	var versions []int
	var all bool
	cmd := &cobra.Command{
		Use:   "destroy PATH (--versions N[,N...] | --all)",
		Short: "Remove versions' values for good",
		Long: `Remove the values of the versions named by --versions for good; their history
entries remain, marked destroyed. The current version cannot be destroyed:
write or roll back to a new one first.

--all removes the whole secret: every version, its history and its metadata.
Neither can be undone. The database does not clear the pages it frees: run
'passman store compact' to remove the bytes from the file too.`,
		Args: clibase.ExactArgs("PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if all == (len(versions) > 0) {
				return clibase.UsageErrorf("name the versions to destroy with --versions, or use --all for the whole secret")
			}
			if err := checkVersions(versions); err != nil {
				return err
			}
			if all {
				return a.changeVersions(cmd, "destroy", changeResult{Path: path, Action: "purged"}, func(svc passman.Service) error {
					return svc.Purge(cmd.Context(), path)
				})
			}
			return a.changeVersions(cmd, "destroy", changeResult{Path: path, Action: "destroyed", Versions: versions}, func(svc passman.Service) error {
				return svc.Destroy(cmd.Context(), path, versions)
			})
		},
	}
	cmd.Flags().IntSliceVar(&versions, "versions", nil, "versions to destroy, such as 1,2")
	cmd.Flags().BoolVar(&all, "all", false, "remove the whole secret with all versions and metadata")
	return cmd
}

func newSecretStageCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "stage PATH STAGE VERSION",
		Short: "Move a stage label to a version",
		Long: `Label VERSION of PATH with STAGE (current, previous or pending). Each stage
labels at most one version; moving current makes the old current version
previous. VERSION 0 removes a label other than current.`,
		Example: `  passman secret stage prod/db/password current 4
  passman secret stage prod/db/password pending 0`,
		Args: clibase.ExactArgs("PATH", "STAGE", "VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			st, err := secret.ParseStage(args[1])
			if err != nil {
				return &clibase.UsageError{Err: err}
			}
			version := 0
			if args[2] != "0" {
				if version, err = parseVersion("VERSION", args[2]); err != nil {
					return err
				}
			}
			res := changeResult{Path: path, Action: "staged", Stage: string(st)}
			if version > 0 {
				res.Versions = []int{version}
			} else {
				res.Action = "unstaged"
			}
			return a.changeVersions(cmd, "set stage "+string(st)+" of", res, func(svc passman.Service) error {
				return svc.SetStage(cmd.Context(), path, st, version)
			})
		},
	}
}

// changeVersions runs a lifecycle change and reports it; verb says what
// was attempted, for the error message.
func (a *app) changeVersions(cmd *cobra.Command, verb string, res changeResult, run func(passman.Service) error) error {
	err := a.withService(cmd.Context(), func(svc passman.Service) error {
		if err := run(svc); err != nil {
			return fmt.Errorf("%s %s: %w", verb, res.Path, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return a.Out.Emit(res, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s: %s\n", res.Path, changeText(res))
		return err
	})
}

func changeText(res changeResult) string {
	switch {
	case res.Action == "staged":
		return fmt.Sprintf("stage %s is now version %d", res.Stage, res.Versions[0])
	case res.Action == "unstaged":
		return fmt.Sprintf("stage %s removed", res.Stage)
	case res.Action == "purged":
		return "destroyed with all versions and metadata"
	case len(res.Versions) == 0:
		return res.Action + " the current version"
	case len(res.Versions) == 1:
		return fmt.Sprintf("%s version %d", res.Action, res.Versions[0])
	default:
		return fmt.Sprintf("%s versions %s", res.Action, joinVersions(res.Versions))
	}
}
