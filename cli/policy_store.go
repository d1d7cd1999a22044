package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/secret"
)

var (
	_ passman.Policies = (*client.Client)(nil)
	_ passman.Policies = (*core.Local)(nil)
)

// withPolicies runs fn with the server's stored policy administration
// when an address is set, else the local store's.
func (a *app) withPolicies(ctx context.Context, fn func(passman.Policies) error) error {
	return withBackend(ctx, a, func(c *client.Client) passman.Policies { return c },
		func(l *core.Local) passman.Policies { return l }, fn)
}

func newPolicyPushCmd(a *app) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "push FILE.rego... [--name NAME]",
		Short: "Store Rego modules in the store (or on the server), tested first (admin)",
		Long: `Store each file as a policy module of the store, named after the file
(authz-team.rego is authz-team; --name names a single file otherwise). A name
ending in _test is a unit test module. Every process opening the store, and
every server sharing it, decides with the stored modules, the bundled
policies and its --policies directory together.

Before a module takes effect the whole set is compiled (strict Rego v1) and
its tests run, the bundled ones and the stored *_test modules; a module that
does not compile or breaks a test is refused with file:line:col (the module
is store:NAME.rego) or the failing test's name, and the set in force stays.
Files are pushed one by one, modules before tests; pushing a file whose
source the module already has changes nothing.`,
		Example: `  passman policy push policies/team.rego policies/team_test.rego
  passman policy push draft.rego --name team`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return clibase.UsageErrorf("want at least one FILE.rego")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if name != "" && len(args) > 1 {
				return clibase.UsageErrorf("--name names one file; got %d", len(args))
			}
			type file struct{ name, path, src string }
			var files []file
			for _, p := range args {
				n := name
				if n == "" {
					n = strings.TrimSuffix(filepath.Base(p), ".rego")
				}
				if err := secret.ValidatePolicyName(n); err != nil {
					return fmt.Errorf("%s: %w (name it with --name)", p, err)
				}
				src, err := readPolicyFile(p)
				if err != nil {
					return err
				}
				files = append(files, file{n, p, src})
			}
			// A test module tests the modules pushed with it.
			slices.SortStableFunc(files, func(x, y file) int {
				return boolCmp(secret.IsPolicyTestName(x.name), secret.IsPolicyTestName(y.name))
			})
			var pushed []secret.PolicyModule
			err := a.withPolicies(cmd.Context(), func(s passman.Policies) error {
				for _, f := range files {
					m, err := s.PutPolicy(cmd.Context(), f.name, f.src)
					if err != nil {
						return fmt.Errorf("push %s as %s: %w", f.path, f.name, err)
					}
					m.Source = ""
					pushed = append(pushed, m)
				}
				return nil
			})
			// What was pushed before a refusal stays pushed: say so.
			if werr := a.Out.Emit(pushed, func(w io.Writer) error {
				for _, m := range pushed {
					if _, err := fmt.Fprintf(w, "Policy %s is version %d (sha256 %s).\n", m.Name, m.Version, m.SHA256[:12]); err != nil {
						return err
					}
				}
				return nil
			}); werr != nil && err == nil {
				err = werr
			}
			return err
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "store the one FILE as module `NAME` (default: the file's name without .rego)")
	return cmd
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// readPolicyFile reads a module's source, bounded by what the store takes.
func readPolicyFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", clibase.UsageErrorf("%w", err)
	}
	defer f.Close() // read-only
	b, err := io.ReadAll(io.LimitReader(f, secret.MaxPolicySource+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > secret.MaxPolicySource {
		return "", fmt.Errorf("%w: %s is over %d bytes (1 MiB)", secret.ErrTooLarge, name, secret.MaxPolicySource)
	}
	return string(b), nil
}

func newPolicyListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the store's policy modules (admin)",
		Args:  clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var mods []secret.PolicyModule
			err := a.withPolicies(cmd.Context(), func(s passman.Policies) error {
				var err error
				mods, err = s.ListPolicies(cmd.Context())
				return err
			})
			if err != nil {
				return fmt.Errorf("list policies: %w", err)
			}
			if mods == nil {
				mods = []secret.PolicyModule{}
			}
			return a.Out.Emit(mods, func(w io.Writer) error {
				t := newTable(w, "NAME", "VERSION", "SHA256", "UPDATED", "BY")
				for _, m := range mods {
					t.row(m.Name, fmt.Sprint(m.Version), m.SHA256[:min(12, len(m.SHA256))], timeText(m.UpdatedAt), m.UpdatedBy)
				}
				return t.flush()
			})
		},
	}
}

func newPolicyGetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Print a stored policy module's source (admin)",
		Args:  clibase.ExactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var m secret.PolicyModule
			err := a.withPolicies(cmd.Context(), func(s passman.Policies) error {
				var err error
				m, err = s.GetPolicy(cmd.Context(), args[0])
				return err
			})
			if err != nil {
				return fmt.Errorf("get policy: %w", err)
			}
			return a.Out.Emit(m, func(w io.Writer) error {
				_, err := io.WriteString(w, m.Source)
				return err
			})
		},
	}
}

func newPolicyDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a stored policy module, tested first (admin)",
		Long: `Delete a stored module. The set without it is compiled and tested first, as
for push: a module another one or a stored test relies on is refused until
those go first.`,
		Args: clibase.ExactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := a.withPolicies(cmd.Context(), func(s passman.Policies) error {
				return s.DeletePolicy(cmd.Context(), args[0])
			})
			if err != nil {
				return fmt.Errorf("delete policy: %w", err)
			}
			return a.Out.Emit(map[string]string{"deleted": args[0]}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Deleted policy %s.\n", args[0])
				return err
			})
		},
	}
}
