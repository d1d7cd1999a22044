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

func newSecretListCmd(a *app) *cobra.Command {
	var opts secret.ListOptions
	var all bool
	cmd := &cobra.Command{
		Use:   "list [PREFIX]",
		Short: "List secrets by path",
		Long: `List secrets whose path starts with PREFIX ("prod/" or "prod/db"), sorted by
path, one page at a time. When more remain, the cursor for the next page is
shown on standard error (text) or as "next" (JSON); pass it to --after, or use
--all to follow every page.`,
		Args: clibase.RangeArgs(0, 1, "[PREFIX]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Prefix = args[0]
			}
			if opts.Limit < 0 || opts.Limit > secret.MaxListLimit {
				return clibase.UsageErrorf("--limit must be 1 to %d, got %d", secret.MaxListLimit, opts.Limit)
			}
			page, err := a.list(cmd, opts, all)
			if err != nil {
				return err
			}
			return a.Out.Emit(page, func(w io.Writer) error {
				t := newTable(w, "PATH", "VERSION", "VERSIONS", "OWNER", "UPDATED")
				for _, e := range page.Entries {
					t.row(e.Path, strconv.Itoa(e.CurrentVersion), strconv.Itoa(e.Versions), e.Owner, timeText(e.UpdatedAt))
				}
				if err := t.flush(); err != nil {
					return err
				}
				if page.Next != "" {
					fmt.Fprintf(a.Env.Stderr, "more secrets follow: passman secret list --after %s (or --all)\n", page.Next)
				}
				return nil
			})
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&opts.Limit, "limit", 0, fmt.Sprintf("page size, at most %d (default %d)", secret.MaxListLimit, secret.DefaultListLimit))
	fs.StringVar(&opts.After, "after", "", "start after `CURSOR`, the last path of the previous page")
	fs.BoolVar(&all, "all", false, "follow every page and list everything")
	return cmd
}

// list returns one page, or with all every page as one.
func (a *app) list(cmd *cobra.Command, opts secret.ListOptions, all bool) (secret.ListPage, error) {
	var out secret.ListPage
	err := a.withService(cmd.Context(), func(svc passman.Service) error {
		for {
			page, err := svc.List(cmd.Context(), opts)
			if err != nil {
				return fmt.Errorf("list: %w", err)
			}
			if !all {
				out = page
				return nil
			}
			out.Entries = append(out.Entries, page.Entries...)
			if page.Next == "" {
				return nil
			}
			if page.Next == opts.After {
				// A cursor that does not advance would loop forever.
				return fmt.Errorf("listing did not advance past %s", page.Next)
			}
			opts.After = page.Next
		}
	})
	if out.Entries == nil {
		out.Entries = []secret.ListEntry{}
	}
	return out, err
}
