package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store/etcd"
)

func newAuditCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify and read the audit log",
		Args:  clibase.GroupArgs,
		RunE:  clibase.GroupRun,
	}
	cmd.AddCommand(newAuditVerifyCmd(a), newAuditTailCmd(a), newAuditShowCmd(a), newAuditRecoverCmd(a))
	return cmd
}

func newAuditRecoverCmd(a *app) *cobra.Command {
	var from, configFile, serverID, to string
	cmd := &cobra.Command{
		Use:   "recover --server-id ID (--config FILE | --from etcd://...) [--to FILE]",
		Short: "Write a server's audit log back out of the etcd store it replicated to",
		Long: `Write the audit chain of server --server-id, as the etcd store of a cluster
holds it (every server replicates its chain there), to a new log file: what
replaces the log of a server whose disk was lost, so that it goes on under
its own id, or what an auditor reads. The store is the one --config (a
server configuration with storage: etcd, whose server_id and store apply
unless flags say otherwise) or --from etcd://HOST:PORT[,...]/PREFIX names.
The log goes to --to, by default the audit log of the store directory
(--store): where the server started with that directory finds it.

An existing file is never overwritten. The chain is written beside it and
verified against the head the store recorded, its signature checked with
the master key when one is at hand (as audit verify does); only a chain
that verifies is moved into place. It runs where the server's etcd
credentials are, not through a server: it is a step of rebuilding a
server, and reads the store directly.`,
		Example: `  passman audit recover --config /etc/passman/server.yaml
  passman audit recover --from etcd://10.0.0.1:2379/passman/prod --server-id pm-2 --to /tmp/pm-2-audit.log`,
		Args: clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" && configFile == "" {
				return clibase.UsageErrorf("name the store: --config FILE (storage: etcd) or --from etcd://...")
			}
			ecfg, err := a.sharedTarget(from, configFile, &serverID)
			if err != nil {
				return err
			}
			if ecfg == nil {
				return clibase.UsageErrorf("%s does not keep the store in etcd (storage: etcd): a single server's log has no copy to recover from", configFile)
			}
			if serverID == "" {
				return clibase.UsageErrorf("--server-id is required")
			}
			dir, err := a.storeDir()
			if err != nil {
				return err
			}
			if to == "" {
				to = filepath.Join(dir, core.AuditFile)
			}
			kr, err := a.verifyKeyring(dir)
			if err != nil {
				return err
			}
			b, err := etcd.Open(cmd.Context(), *ecfg)
			if err != nil {
				return err
			}
			defer b.Close()
			rep, err := core.RecoverLog(cmd.Context(), b, kr, serverID, to)
			if err != nil {
				return fmt.Errorf("recover audit log: %w", err)
			}
			return a.Out.Emit(rep, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "recovered the audit log of server %s into %s\n%s\n", serverID, to, verifyText(rep))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "a server configuration `FILE` with storage: etcd")
	cmd.Flags().StringVar(&from, "from", "", "the etcd store: etcd://HOST:PORT[,HOST:PORT...]/PREFIX")
	cmd.Flags().StringVar(&serverID, "server-id", "", "the server whose chain to recover (default: --config's server_id)")
	cmd.Flags().StringVar(&to, "to", "", "the new log `FILE` (default: STORE/"+core.AuditFile+")")
	return cmd
}

func newAuditVerifyCmd(a *app) *cobra.Command {
	var noKey bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log's hash chain and the store's signed checkpoint",
		Long: `Check every entry of the audit log: its hash, its link to the previous entry,
and that the log reaches the checkpoint the store recorded (so cut-off entries
are caught too). With the master key (PASSMAN_MASTER_KEY, --key-file or the
store's key file, when there is one) it also checks the checkpoint's
signature, which catches a log re-chained and a checkpoint re-computed by
someone who could write the store's files; without it, or with --no-key, it
says the signature was not checked. It writes nothing, so a damaged or
tampered store can still be examined. With a server address set (--addr or
PASSMAN_ADDR), the server verifies its own log, with its key: an admin
action there.

Exits 1 and names the first bad entry, or the bad checkpoint, if the log does
not verify. Warnings (signature not checked, unsigned checkpoint) do not
change the exit code.`,
		Args: clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := a.verifyAudit(cmd.Context(), noKey)
			if err != nil && rep.Broken == nil {
				return fmt.Errorf("verify audit log: %w", err)
			}
			if err := a.Out.Emit(rep, func(w io.Writer) error {
				_, err := io.WriteString(w, verifyText(rep)+"\n")
				return err
			}); err != nil {
				return err
			}
			if rep.Broken != nil {
				return &clibase.ReportedError{Code: clibase.ExitFailure, Msg: brokenText(rep)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noKey, "no-key", false, "check the chain only, without the master key (the checkpoint's signature is not checked)")
	return cmd
}

// verifyAudit verifies the server's audit log when an address is set,
// else the local store's, from its files: with the master key when one is
// at hand, else without, so a store whose key is lost, or that will not
// open, can still be checked.
func (a *app) verifyAudit(ctx context.Context, noKey bool) (audit.Report, error) {
	if a.remoteAddr() != "" {
		if noKey {
			return audit.Report{}, clibase.UsageErrorf("--no-key is for a local store; a server verifies with its own key")
		}
		c, err := a.remoteClient()
		if err != nil {
			return audit.Report{}, err
		}
		return c.VerifyAudit(ctx)
	}
	dir, err := a.storeDir()
	if err != nil {
		return audit.Report{}, err
	}
	var kr *keyring.Keyring
	if !noKey {
		if kr, err = a.verifyKeyring(dir); err != nil {
			return audit.Report{}, err
		}
	}
	return core.VerifyDirWithKeyring(ctx, dir, kr)
}

// verifyKeyring is the master key for checking signatures, nil if there is
// none: keys from the environment, else a key file named by --key-file or
// PASSMAN_KEY_FILE, else the store's own key file if it exists. A key named
// but unusable is an error, not a quiet fallback to an unchecked signature.
func (a *app) verifyKeyring(dir string) (*keyring.Keyring, error) {
	if v := a.Env.Var(keyring.EnvVar); v != "" {
		return keyring.FromEnv(v)
	}
	kf := firstSet(a.flags.keyFile, a.Env.Var(envKeyFile))
	if kf == "" {
		kf = filepath.Join(dir, core.KeyFile)
		if _, err := os.Lstat(kf); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	return keyring.LoadFile(kf)
}

func verifyText(rep audit.Report) string {
	var b strings.Builder
	if rep.Broken != nil {
		b.WriteString(brokenText(rep))
	} else {
		fmt.Fprintf(&b, "audit log OK: %d entries, head seq %d (%d unconfirmed)", rep.Entries, rep.Head.Seq, rep.Unconfirmed)
	}
	if rep.Signature == audit.SignatureValid {
		fmt.Fprintf(&b, "\ncheckpoint at seq %d signed with key %s at %s: signature valid", rep.Anchor.Seq, rep.SignedBy, rep.SignedAt.Format(time.RFC3339))
	}
	for _, w := range rep.Warnings {
		b.WriteString("\nwarning: " + w)
	}
	return b.String()
}

func brokenText(rep audit.Report) string {
	b := rep.Broken
	if b.Line == 0 {
		return fmt.Sprintf("audit log BROKEN at the store's checkpoint (entry %d): %s", b.Seq, b.Reason)
	}
	return fmt.Sprintf("audit log BROKEN at entry %d (line %d): %s", b.Seq, b.Line, b.Reason)
}

func newAuditTailCmd(a *app) *cobra.Command {
	var f auditFilterFlags
	var n int
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Show the last audit entries",
		Args:  clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 {
				return clibase.UsageErrorf("-n must be 1 or more, got %d", n)
			}
			return a.queryAudit(cmd, &f, n)
		},
	}
	cmd.Flags().IntVarP(&n, "lines", "n", 20, "how many entries to show")
	f.register(cmd.Flags())
	return cmd
}

func newAuditShowCmd(a *app) *cobra.Command {
	var f auditFilterFlags
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show audit entries matching filters",
		Long: `Show the audit entries that match every filter given, oldest first.
--since and --until take an RFC 3339 time (2025-01-31T12:00:00Z) or a duration
ago (90m, 1h, 7d).`,
		Example: `  passman audit show --path prod/db/password
  passman audit show --outcome failure --since 24h -o json`,
		Args: clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.queryAudit(cmd, &f, 0)
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// queryAudit shows entries matching the filter flags; limit > 0 keeps the
// last limit of them.
func (a *app) queryAudit(cmd *cobra.Command, f *auditFilterFlags, limit int) error {
	filter, err := f.build(a.Env.Clock())
	if err != nil {
		return err
	}
	var entries []audit.Entry
	err = a.withService(cmd.Context(), func(svc passman.Service) error {
		entries, err = svc.QueryAudit(cmd.Context(), filter, limit)
		if err != nil {
			return fmt.Errorf("query audit log: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []audit.Entry{}
	}
	return a.Out.Emit(entries, func(w io.Writer) error {
		t := newTable(w, "TIME", "ACTOR", "ACTION", "PATH", "VERSION", "OUTCOME", "ERROR", "REQUEST")
		for _, e := range entries {
			version := ""
			if e.Version != 0 {
				version = strconv.Itoa(e.Version)
			}
			t.row(timeText(e.Time), e.Actor, e.Action, e.Path, version, string(e.Outcome), e.ErrorClass, e.RequestID)
		}
		return t.flush()
	})
}

// auditFilterFlags are the flags that select audit entries.
type auditFilterFlags struct {
	path, pathPrefix, actor, action, outcome, since, until string
}

func (f *auditFilterFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.path, "path", "", "only entries for secret `PATH`")
	fs.StringVar(&f.pathPrefix, "path-prefix", "", "only entries for paths starting with `PREFIX`")
	fs.StringVar(&f.actor, "actor", "", "only entries by `ACTOR`")
	fs.StringVar(&f.action, "action", "", "only entries for `ACTION`, such as secret.put")
	fs.StringVar(&f.outcome, "outcome", "", "only entries with `OUTCOME`: success, failure or denied")
	fs.StringVar(&f.since, "since", "", "only entries at or after `TIME` (RFC 3339, or a duration ago such as 1h)")
	fs.StringVar(&f.until, "until", "", "only entries before `TIME` (RFC 3339, or a duration ago such as 1h)")
}

func (f *auditFilterFlags) build(now time.Time) (audit.Filter, error) {
	filter := audit.Filter{Path: f.path, PathPrefix: f.pathPrefix, Actor: f.actor, Action: f.action}
	switch o := audit.Outcome(f.outcome); o {
	case "", audit.OutcomeSuccess, audit.OutcomeFailure, audit.OutcomeDenied:
		filter.Outcome = o
	default:
		return filter, clibase.UsageErrorf("--outcome: unknown outcome %q (want %s, %s or %s)", f.outcome, audit.OutcomeSuccess, audit.OutcomeFailure, audit.OutcomeDenied)
	}
	var err error
	if filter.Since, err = parseWhen("since", f.since, now); err != nil {
		return filter, err
	}
	if filter.Until, err = parseWhen("until", f.until, now); err != nil {
		return filter, err
	}
	return filter, nil
}

// parseWhen parses an RFC 3339 time or a duration before now ("1h", "7d").
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := secret.ParseDuration(s)
	if err != nil {
		if errors.Is(err, secret.ErrInvalidArgument) {
			return time.Time{}, clibase.UsageErrorf("--%s: %q is neither an RFC 3339 time (2025-01-31T12:00:00Z) nor a duration ago (1h, 7d)", flag, s)
		}
		return time.Time{}, err
	}
	return now.Add(-time.Duration(d)), nil
}
