package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/manifest"
	"github.com/passman-dev/passman/policy"
)

// Exit codes of passman plan, as terraform plan -detailed-exitcode: 0 no
// changes, 1 error, 2 changes present.
const exitPlanChanges = 2

// manifestFlags are the flags of lint, plan and apply.
type manifestFlags struct{ file string }

func (f *manifestFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.file, "file", "f", "passman.yaml", "manifest file")
}

// load reads the manifest and builds the policy engine: --policies, else
// the manifest's policies directory (relative to the manifest), else the
// bundled policies alone.
func (a *app) loadManifest(ctx context.Context, f *manifestFlags) (*manifest.Manifest, *policy.Engine, error) {
	m, err := manifest.Load(f.file)
	if err != nil {
		return nil, nil, err
	}
	dir := a.policyDir()
	if dir == "" && m.Policies != "" {
		dir = filepath.Join(filepath.Dir(f.file), m.Policies)
	}
	eng, err := policy.New(ctx, policy.Options{Dir: dir})
	if err != nil {
		return nil, nil, fmt.Errorf("load policies: %w", err)
	}
	// The store authorizes with the same policy set that lints: one
	// source of truth for what the manifest's policies say.
	a.authz = eng
	return m, eng, nil
}

func newLintCmd(a *app) *cobra.Command {
	var f manifestFlags
	var fromStore bool
	cmd := &cobra.Command{
		Use:   "lint [-f passman.yaml]",
		Short: "Check a manifest (and the store) against the lint policies",
		Long: `Run data.passman.lint over the secrets the manifest declares; with
--from-store, also over the metadata of every secret in the store. Exits 1
when there are deny findings; warnings and excepted findings are reported.`,
		Args: clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, eng, err := a.loadManifest(cmd.Context(), &f)
			if err != nil {
				return err
			}
			rep, err := manifest.Lint(cmd.Context(), eng, m)
			if err != nil {
				return err
			}
			if fromStore {
				err := a.withService(cmd.Context(), func(svc passman.Service) error {
					in, err := manifest.StoreLintInput(cmd.Context(), svc)
					if err != nil {
						return err
					}
					srep, err := eng.Lint(cmd.Context(), in)
					rep = rep.Merge(srep)
					return err
				})
				if err != nil {
					return fmt.Errorf("lint store: %w", err)
				}
			}
			if err := a.Out.Emit(rep, func(w io.Writer) error { return writeLintReport(w, rep) }); err != nil {
				return err
			}
			if n := len(rep.Deny); n > 0 {
				return &clibase.ReportedError{Code: clibase.ExitFailure, Msg: fmt.Sprintf("%d deny findings", n)}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&fromStore, "from-store", false, "also lint the metadata of every secret in the store")
	return cmd
}

func writeLintReport(w io.Writer, rep policy.LintReport) error {
	if len(rep.Deny)+len(rep.Warn)+len(rep.Excepted) == 0 {
		_, err := fmt.Fprintf(w, "no findings (policy %s)\n", rep.Revision)
		return err
	}
	t := newTable(w, "LEVEL", "RULE", "PATH", "MESSAGE")
	for _, g := range []struct {
		level string
		fs    []policy.LintFinding
	}{{"deny", rep.Deny}, {"warn", rep.Warn}, {"excepted", rep.Excepted}} {
		for _, f := range g.fs {
			t.row(g.level, f.Rule, f.Path, f.Msg)
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d deny, %d warn, %d excepted (policy %s)\n", len(rep.Deny), len(rep.Warn), len(rep.Excepted), rep.Revision)
	return err
}

func newPlanCmd(a *app) *cobra.Command {
	var f manifestFlags
	cmd := &cobra.Command{
		Use:   "plan [-f passman.yaml]",
		Short: "Show what apply would change; never shows a value",
		Long: `Compare the manifest with the store and print what 'passman apply' would do:
secrets to create (generated values), metadata to change, static secrets whose
value has not been supplied, and secrets in the store the manifest does not
declare (drift).

Exit codes, as terraform plan -detailed-exitcode: 0 nothing for apply to
do, 1 error, 2 apply would create or update something. Drift and missing
static values are reported but do not count: apply changes neither. Usage
errors exit 1 here, too.`,
		Annotations: map[string]string{annotationUsageExit: "1"},
		Args:        clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, _, err := a.loadManifest(cmd.Context(), &f)
			if err != nil {
				return planError(err)
			}
			var plan *manifest.Plan
			err = a.withService(cmd.Context(), func(svc passman.Service) error {
				plan, err = manifest.MakePlan(cmd.Context(), svc, m)
				return err
			})
			if err != nil {
				return planError(err)
			}
			if err := manifest.WritePlan(a.Out.W, string(a.Out.Format), plan); err != nil {
				return err
			}
			// Drift and missing static values are reported, but apply can
			// fix neither, so they do not make the plan "changes present".
			if plan.Count(manifest.KindCreate)+plan.Count(manifest.KindUpdate) > 0 {
				return &clibase.ReportedError{Code: exitPlanChanges, Msg: "changes present"}
			}
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

// planError maps every plan failure to exit code 1, since 2 means
// "changes present" for plan.
func planError(err error) error {
	var re *clibase.ReportedError
	if errors.As(err, &re) {
		return err
	}
	return &clibase.ExitError{Code: clibase.ExitFailure, Err: err}
}

func newApplyCmd(a *app) *cobra.Command {
	var f manifestFlags
	cmd := &cobra.Command{
		Use:   "apply [-f passman.yaml]",
		Short: "Create and update the secrets the manifest declares",
		Long: `Lint the manifest, refuse if any deny finding remains, then apply the plan:
create declared secrets with generated values and bring metadata in line.
Static secrets are never invented and undeclared secrets are never deleted;
both are reported. Applying twice changes nothing the second time. Every
change is audited.`,
		Args: clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, eng, err := a.loadManifest(cmd.Context(), &f)
			if err != nil {
				return err
			}
			var res manifest.ApplyResult
			var rep policy.LintReport
			err = a.withService(cmd.Context(), func(svc passman.Service) error {
				res, rep, err = manifest.CheckedApply(cmd.Context(), svc, eng, m)
				return err
			})
			if len(rep.Deny) > 0 {
				_ = writeLintReport(a.Env.Stderr, rep)
			}
			if err != nil && len(res.Created)+len(res.Updated) == 0 {
				return err
			}
			// A failure part-way still reports what was done before it.
			verb := "complete"
			if err != nil {
				verb = "stopped by an error"
			}
			if eerr := a.Out.Emit(res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Apply %s: %d created, %d updated, %d skipped.\n", verb, len(res.Created), len(res.Updated), len(res.Skipped))
				return err
			}); eerr != nil {
				return errors.Join(err, eerr)
			}
			return err
		},
	}
	f.register(cmd)
	return cmd
}
