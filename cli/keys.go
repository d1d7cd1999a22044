package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/keyring"
)

// keyInfo describes one master key: never its material.
type keyInfo struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created,omitzero"`
	Retired time.Time `json:"retired,omitzero"`
	Active  bool      `json:"active"`
}

// keysResult is keys list's JSON shape. Source is the key file's path or
// the name of the environment variable the keys came from.
type keysResult struct {
	Source string    `json:"source"`
	Keys   []keyInfo `json:"keys"`
}

// rotateResult is keys rotate's JSON shape.
type rotateResult struct {
	KeyFile   string   `json:"key_file"`
	OldKey    string   `json:"old_key"`
	NewKey    string   `json:"new_key"`
	Rewrapped int      `json:"rewrapped"`
	Retired   []string `json:"retired"`
}

func newKeysCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage master keys",
		Args:  clibase.GroupArgs,
		RunE:  clibase.GroupRun,
	}
	cmd.AddCommand(newKeysRotateCmd(a), newKeysRewrapCmd(a), newKeysListCmd(a))
	return cmd
}

func newKeysRotateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Replace the master key and re-wrap every data key",
		Long: `Add a new master key to the key file, make it active, and re-wrap every
secret's data key under it; values are never decrypted. The old keys stay in
the file, marked retired. If rotation is interrupted, run it again.

Keys from PASSMAN_MASTER_KEY cannot be rotated by passman: whoever sets the
variable owns them. Put the new key first ("new,old") and run 'passman keys
rewrap'; afterwards the new key alone opens the store.`,
		Args: clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withLocal(cmd.Context(), func(l *core.Local, c config) error {
				keys, err := l.Keys(cmd.Context())
				if err != nil {
					return fmt.Errorf("rotate master key: %w", err)
				}
				res := rotateResult{KeyFile: c.keyFilePath(), OldKey: activeKey(keys)}
				rep, err := l.RotateKeys(cmd.Context())
				if err != nil {
					return fmt.Errorf("rotate master key: %w", err)
				}
				res.NewKey, res.Rewrapped, res.Retired = rep.Active, rep.Rewrapped, rep.Retired
				if res.Retired == nil {
					res.Retired = []string{}
				}
				return a.Out.Emit(res, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "master key rotated: %s → %s (%s)\nre-wrapped %d data keys; retired: %s\n",
						res.OldKey, res.NewKey, res.KeyFile, res.Rewrapped, strings.Join(res.Retired, ", "))
					return err
				})
			})
		},
	}
}

func newKeysRewrapCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rewrap",
		Short: "Re-wrap every data key under the active master key",
		Long: `Re-wrap every secret's data key (and the store's detection seed) under the
active master key, then retire the others; values are never decrypted. This
finishes a rotation of keys supplied in PASSMAN_MASTER_KEY ("new,old"). It is
safe to run again.`,
		Args: clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withLocal(cmd.Context(), func(l *core.Local, _ config) error {
				rep, err := l.Rewrap(cmd.Context())
				if err != nil {
					return fmt.Errorf("re-wrap data keys: %w", err)
				}
				if rep.Retired == nil {
					rep.Retired = []string{}
				}
				return a.Out.Emit(rep, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "re-wrapped %d data keys under %s; retired: %s\n", rep.Rewrapped, rep.Active, strings.Join(rep.Retired, ", "))
					return err
				})
			})
		},
	}
}

func newKeysListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List master keys (ids and dates, never key material)",
		Args:  clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withLocal(cmd.Context(), func(l *core.Local, c config) error {
				keys, err := l.Keys(cmd.Context())
				if err != nil {
					return fmt.Errorf("list keys: %w", err)
				}
				res := keysResult{Source: c.keyFilePath(), Keys: make([]keyInfo, 0, len(keys))}
				if c.keyring != nil {
					res.Source = keyring.EnvVar
				}
				for _, k := range keys {
					res.Keys = append(res.Keys, keyInfo{ID: k.ID, Created: k.Created, Retired: k.Retired, Active: k.Active})
				}
				return a.Out.Emit(res, func(w io.Writer) error {
					if _, err := fmt.Fprintf(w, "source: %s\n", res.Source); err != nil {
						return err
					}
					t := newTable(w, "ACTIVE", "ID", "CREATED", "RETIRED")
					for _, k := range res.Keys {
						mark := " "
						if k.Active {
							mark = "*"
						}
						t.row(mark, k.ID, timeText(k.Created), timeText(k.Retired))
					}
					return t.flush()
				})
			})
		},
	}
}

// activeKey names the key that wraps new data keys.
func activeKey(keys []keyring.Key) string {
	for _, k := range keys {
		if k.Active {
			return k.ID
		}
	}
	return ""
}
