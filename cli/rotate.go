package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/scanner"
	"github.com/passman-dev/passman/scheduler"
	"github.com/passman-dev/passman/secret"
)

// withRotator runs fn with the server at remoteAddr when one is set (the
// server runs the rotation as the token's identity, with its own
// connections), else with the local store: both are passman.Rotator.
func (a *app) withRotator(ctx context.Context, fn func(passman.Rotator) error) error {
	return withBackend(ctx, a, func(c *client.Client) passman.Rotator { return c },
		func(l *core.Local) passman.Rotator { return l }, fn)
}

func newRotateCmd(a *app) *cobra.Command {
	var due bool
	var opts rotation.DueOptions
	cmd := &cobra.Command{
		Use:   "rotate [PATH] | --due",
		Short: "Rotate a secret through its connector: create, set, test, finish",
		Long: `Rotate a secret with the staged protocol: a new pending version from the
secret's generator, set on the target system by its connector, tested
there, then promoted to current (the old current becomes previous). A
failure in set or test restores the target and discards the pending
version. A rotation a crash interrupted is resumed.

With --due, rotate every secret whose rotation period has passed: a canary
batch first, then the rest, stopping when failures pass the threshold; and
revoke previous versions whose grace period is over. For cron or a
scheduled workflow.

With a server address set (--addr or PASSMAN_ADDR), the server rotates, as
the token's identity: each step is authorized and audited there, and the
secret's connection is the server's (credentials named env:NAME come from
the server's environment).

Exit codes: 0 done, 1 a rotation failed (rolled back), 2 error.`,
		Args: clibase.RangeArgs(0, 1, "[PATH]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if due == (len(args) == 1) {
				return clibase.UsageErrorf("give a PATH or --due")
			}
			return a.withRotator(ctx, func(e passman.Rotator) error {
				if due {
					rep, err := e.RotateDue(ctx, opts)
					if err != nil {
						return err
					}
					if err := a.Out.Emit(rep, func(w io.Writer) error { return dueText(w, rep) }); err != nil {
						return err
					}
					if len(rep.Failed) > 0 {
						return &clibase.ReportedError{Code: clibase.ExitFailure, Msg: fmt.Sprintf("%d of %d rotations failed", len(rep.Failed), rep.Due)}
					}
					return nil
				}
				res, err := e.Rotate(ctx, args[0], "manual")
				if res.State == secret.RotationRolledBack || res.State == secret.RotationFailed {
					if werr := a.Out.Emit(res, func(w io.Writer) error { return resultText(w, res) }); werr != nil {
						return werr
					}
					return &clibase.ReportedError{Code: clibase.ExitFailure, Msg: err.Error()}
				}
				if err != nil {
					return err
				}
				return a.Out.Emit(res, func(w io.Writer) error { return resultText(w, res) })
			})
		},
	}
	cmd.Flags().BoolVar(&due, "due", false, "rotate every secret whose rotation period has passed")
	cmd.Flags().StringVar(&opts.Prefix, "prefix", "", "with --due: only secrets under this prefix")
	cmd.Flags().IntVar(&opts.Canary, "canary", 0, "with --due: size of the first batch (default 5% of the due secrets, 1 to 10)")
	cmd.Flags().IntVar(&opts.MaxFailures, "max-failures", 0, "with --due: stop once more rotations than this fail (default 10%, at least 1)")
	cmd.Flags().IntVar(&opts.Workers, "workers", 0, "with --due: concurrent rotations after the canary (default 4)")
	return cmd
}

func resultText(w io.Writer, r rotation.Result) error {
	var b strings.Builder
	switch r.State {
	case secret.RotationSucceeded:
		fmt.Fprintf(&b, "%s: rotated v%d -> v%d", r.Path, r.From, r.To)
		if r.Resumed {
			b.WriteString(" (resumed an interrupted rotation)")
		}
		b.WriteString("\n")
	default:
		fmt.Fprintf(&b, "%s: %s: %s\n", r.Path, r.State, r.Error)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func dueText(w io.Writer, rep rotation.DueReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d due, %d rotated, %d failed", rep.Due, len(rep.Rotated), len(rep.Failed))
	if rep.Due > 0 {
		fmt.Fprintf(&b, " (canary batch of %d)", rep.CanarySize)
	}
	b.WriteString("\n")
	for _, r := range rep.Failed {
		fmt.Fprintf(&b, "failed: %s: %s\n", r.Path, r.Error)
	}
	for _, p := range rep.Revoked {
		fmt.Fprintf(&b, "revoked the previous version of %s\n", p)
	}
	if rep.Stopped != "" {
		fmt.Fprintf(&b, "stopped: %s; %d not attempted\n", rep.Stopped, len(rep.Skipped))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// statusReport is what status shows: the scheduler (nil for a caller
// who may not see it) and the rotated secrets.
type statusReport struct {
	Scheduler *scheduler.Status `json:"scheduler"`
	Secrets   []rotation.Entry  `json:"secrets"`
}

// statusSource is what status asks: the rotations and the scheduler.
type statusSource interface {
	passman.Rotator
	passman.Scheduling
}

func newStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status [PREFIX]",
		Short: "Rotation status: the scheduler, stale secrets, rotations in progress, last results",
		Long: `Rotation status: the scheduler's leader and its last runs (for an admin;
with a server, the leader its election names now), then every secret under
PREFIX with a rotation spec: period, due date, last success, last result.`,
		Args: clibase.RangeArgs(0, 1, "[PREFIX]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			return withBackend(ctx, a, func(c *client.Client) statusSource { return c },
				func(l *core.Local) statusSource { return l }, func(e statusSource) error {
					var rep statusReport
					var err error
					if rep.Secrets, err = e.RotationStatus(ctx, prefix); err != nil {
						return err
					}
					if rep.Secrets == nil {
						rep.Secrets = []rotation.Entry{}
					}
					switch st, err := e.SchedulerStatus(ctx); {
					case err == nil:
						rep.Scheduler = &st
					case !errors.Is(err, secret.ErrPermissionDenied):
						return err
					}
					return a.Out.Emit(rep, func(w io.Writer) error {
						if err := schedulerText(w, rep.Scheduler); err != nil {
							return err
						}
						return statusText(w, rep.Secrets)
					})
				})
		},
	}
}

// schedulerText writes the scheduler's leader and last runs, newest first.
func schedulerText(w io.Writer, st *scheduler.Status) error {
	var b strings.Builder
	switch {
	case st == nil:
		b.WriteString("scheduler: not shown (an admin action)\n")
	case st.Leader == "" && len(st.Runs) == 0:
		b.WriteString("scheduler: has not run (enable it in the server configuration's scheduler section)\n")
	default:
		fmt.Fprintf(&b, "scheduler: leader %s", cmp.Or(st.Leader, "(none)"))
		if !st.LeaderSince.IsZero() {
			fmt.Fprintf(&b, " since %s", timeText(st.LeaderSince))
		}
		if st.Live {
			b.WriteString(" (live)")
		}
		b.WriteString("\n")
		for _, r := range st.Runs {
			fmt.Fprintf(&b, "run %s on %s: %d due, %d rotated, %d resumed, %d failed, %d revoked, %d tokens reaped (started %s late)\n",
				timeText(r.StartedAt), r.Node, r.Due, len(r.Rotated), len(r.Resumed), len(r.Failed), len(r.Revoked), r.Reaped, r.Lag().Round(time.Millisecond))
			for _, p := range r.Rotated {
				fmt.Fprintf(&b, "  rotated %s\n", p)
			}
			for _, p := range r.Resumed {
				fmt.Fprintf(&b, "  resumed %s\n", p)
			}
			for _, f := range r.Failed {
				fmt.Fprintf(&b, "  failed %s: %s\n", f.Path, f.Error)
			}
			for _, p := range r.Revoked {
				fmt.Fprintf(&b, "  revoked the previous version of %s\n", p)
			}
			if r.Stopped != "" {
				fmt.Fprintf(&b, "  stopped: %s; %d not attempted\n", r.Stopped, r.Skipped)
			}
			for _, e := range r.Errors {
				fmt.Fprintf(&b, "  error: %s\n", e)
			}
			if r.Truncated > 0 {
				fmt.Fprintf(&b, "  (%d more paths not listed)\n", r.Truncated)
			}
		}
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func statusText(w io.Writer, entries []rotation.Entry) error {
	t := newTable(w, "PATH", "CONNECTION", "PERIOD", "DUE", "LAST ROTATION", "RESULT")
	for _, e := range entries {
		due := "no"
		if e.Due {
			due = "yes"
		} else if !e.DueAt.IsZero() {
			due = e.DueAt.UTC().Format(time.DateOnly)
		}
		period, last, result := "", "never", ""
		if e.Period > 0 {
			period = e.Period.String()
		}
		if st := e.Status; st != nil {
			if !st.LastSuccess.IsZero() {
				last = timeText(st.LastSuccess)
			}
			result = string(st.State)
			if st.Step != "" {
				result += " at " + string(st.Step)
			}
			if st.Error != "" {
				result += ": " + st.Error
			}
		}
		if e.RevokeDue {
			result += " (previous due for revocation)"
		}
		conn := e.Connection
		if e.Legacy {
			conn, result = "(legacy)", "not run: spec predates connections; run 'passman connection migrate'"
		}
		t.row(e.Path, conn, period, due, last, result)
	}
	return t.flush()
}

// withResponder runs fn with the server at remoteAddr when one is set
// (its respond policy decides and its connections act, each step
// authorized and audited as the token's identity), else with the local
// store: both are passman.LeakResponder.
func (a *app) withResponder(ctx context.Context, fn func(passman.LeakResponder) error) error {
	return withBackend(ctx, a, func(c *client.Client) passman.LeakResponder { return c },
		func(l *core.Local) passman.LeakResponder { return l }, fn)
}

// Respond runs the leak response for a scan's managed findings, once per
// leaked version, and notes on each finding what was done (its Response),
// the same way whichever side responded.
func (a *app) Respond(ctx context.Context, findings []scanner.Finding) error {
	if len(rotation.LeakFindings(findings)) == 0 {
		return nil
	}
	return a.withResponder(ctx, func(r passman.LeakResponder) error {
		if _, err := rotation.RespondToFindings(ctx, r, findings); err != nil {
			return fmt.Errorf("--%w", err)
		}
		return nil
	})
}
