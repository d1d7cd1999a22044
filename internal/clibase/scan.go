package clibase

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman/internal/scanrun"
	"github.com/passman-dev/passman/scanner"
)

// ExitScanError is passman scan's exit code for an error. Its codes are
// gitleaks': 0 clean, 1 leaks found, 2 error.
const ExitScanError = 2

// Managed is the full program's part of a scan: recognising managed
// secrets (--index, --managed) and responding to their leaks (--respond),
// which needs the store. The front runs scans without it and hands
// invocations with those flags to the full program (see Serves).
type Managed interface {
	WithManaged(ctx context.Context, f *ScanFlags, opts scanner.Options, scan func(scanner.Options) error) error
	Respond(ctx context.Context, findings []scanner.Finding) error
}

// scanCmds builds the scan commands of one invocation.
type scanCmds struct {
	*State
	managed Managed
}

// ScanFlags are a scan command's flags.
type ScanFlags struct {
	config   string
	Index    string
	Managed  bool
	format   string
	baseline string
	ignore   string
	Respond  bool
	show     bool
	rules    string
	// root is where a .gitleaksignore is looked for when --gitleaks-ignore
	// is not given: the scanned directory or repository.
	root string
}

func (f *ScanFlags) register(cmd *cobra.Command) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[AnnotationFormats] = strings.Join(scanner.Formats, ",")
	cmd.Flags().StringVar(&f.config, "config", "", "a .gitleaks.toml replacing the default rules ([extend] useDefault = true extends them)")
	cmd.Flags().StringVar(&f.Index, "index", "", "fingerprint index from 'passman fingerprints export', to recognise managed secrets (candidates are confirmed by the server with an address set, else the local store)")
	cmd.Flags().BoolVar(&f.Managed, "managed", false, "recognise managed secrets using the store's index (the server's, with a server address set); only secrets you may read")
	cmd.Flags().StringVar(&f.format, "format", "", "report format: "+strings.Join(scanner.Formats, ", ")+" (default: the -o format)")
	cmd.Flags().StringVar(&f.baseline, "baseline", "", "a JSON report (passman's or gitleaks') of known findings: only new ones are reported")
	cmd.Flags().BoolVar(&f.Respond, "respond", false, "with --managed: act on leaked managed secrets as the respond policy decides (rotate, revoke the leaked version); on the server, with a server address set")
	cmd.Flags().StringVar(&f.rules, "rules", scanner.RulesPassman, "default rules: passman (gitleaks' and passman's: config-file passwords, password hashes, framework keys, credentials in URIs) or gitleaks (gitleaks' alone, for its exact findings)")
	cmd.Flags().BoolVar(&f.show, "show-secrets", false, "print each secret's value, for triage at your own terminal (text and json only; never in CI formats)")
	cmd.Flags().StringVar(&f.ignore, "gitleaks-ignore", "", "a .gitleaksignore file of fingerprints to ignore (default: .gitleaksignore in the scanned directory, if any)")
}

// NewScanCmd is passman scan; managed is nil in the front.
func NewScanCmd(s *State, managed Managed) *cobra.Command {
	a := &scanCmds{State: s, managed: managed}
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Find leaked secrets: gitleaks' rules plus passman's own managed secrets",
		Long: `Scan files for secrets with gitleaks' rules and, with --index or --managed,
recognise passman's own managed secrets by keyed fingerprint (a random
password matches no rule). Findings never show the secret. Only secrets
you may read are recognised, and values too weak to export (fewer than 16
bytes or about 64 bits) are not searched for.

The exported index holds only a 24-bit prefix of each fingerprint: a token
whose prefix is in it is a candidate, and the store confirms candidates
(POST /v1/fingerprints/confirm on a server; rate-limited and audited).
--index FILE confirms with the server when an address is set, else with
the local store. A token that may read only part of the store uses
'passman fingerprints export --prefix' and --index.

With a server address set (--addr or PASSMAN_ADDR), --managed exports the
server's index and --respond has the server respond, with its respond
policy and connectors, as the token's identity; only each leak's path,
version and location (rule, file, line, commit, author, date) are sent.

Exit codes, as gitleaks: 0 nothing found, 1 leaks found, 2 error.`,
		Args: GroupArgs,
		RunE: GroupRun,
	}
	cmd.AddCommand(newScanFileCmd(a), newScanDirCmd(a), newScanGitCmd(a), newScanStagedCmd(a))
	return cmd
}

func newScanGitCmd(a *scanCmds) *cobra.Command {
	var f ScanFlags
	var rng, cacheFile string
	var noCache bool
	cmd := &cobra.Command{
		Use:   "git [PATH]",
		Short: "Scan a repository's history: every commit of every ref, or a range",
		Long: `Scan what each commit of a git repository adds, merge commits included
(lines a merge adds that neither parent has). Each secret is reported once,
at the commit that first added it to its file.

With --range BASE..HEAD only that range's commits are scanned (a pull
request) and only secrets the range adds are reported: one already in the
file at the merge base is not new.

Results are cached per commit (by the rules in force), so a second scan of
the same history reads only new commits; --no-cache turns that off.`,
		Args: RangeArgs(0, 1, "[PATH]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.root = repoArg(args)
			// A history scan's heap is mostly garbage (parsed diffs):
			// collecting at 25 % growth instead of 100 % costs no
			// measurable CPU and saves ~18 MB of peak RSS on a
			// 3,600-commit history. Not with a managed index, whose
			// large live heap every collection would scan again.
			// GOGC, when set, decides.
			progress := a.Progress("commits")
			if a.Env.Var("GOGC") == "" && f.Index == "" && !f.Managed {
				if rng == "" {
					debug.SetGCPercent(25)
				} else {
					progress = rangeGC(progress)
				}
			}
			return a.runScan(cmd.Context(), &f, func(s *scanner.Scanner) ([]scanner.Finding, scanner.Stats, error) {
				opts := scanner.GitOptions{Range: rng, Progress: progress}
				if !noCache {
					c, err := openScanCache(cacheFile)
					if err != nil {
						return nil, scanner.Stats{}, err
					}
					if c != nil {
						defer c.Close()
						opts.Cache = c
					}
				}
				return s.ScanGit(cmd.Context(), f.root, opts)
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&rng, "range", "", "scan only BASE..HEAD (a pull request's commits)")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "scan every commit, ignoring and not updating the scan cache")
	cmd.Flags().StringVar(&cacheFile, "cache-file", "", "scan cache file (default: passman/scan-cache.db in the user cache directory)")
	return cmd
}

func newScanStagedCmd(a *scanCmds) *cobra.Command {
	var f ScanFlags
	cmd := &cobra.Command{
		Use:   "staged [PATH]",
		Short: "Scan what the index adds to HEAD (for a pre-commit hook)",
		Long: `Scan the staged changes of a repository: what would be committed. A secret
already in a file at HEAD is not reported. Exit 1 stops the commit.`,
		Args: RangeArgs(0, 1, "[PATH]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.root = repoArg(args)
			return a.runScan(cmd.Context(), &f, func(s *scanner.Scanner) ([]scanner.Finding, scanner.Stats, error) {
				return s.ScanStaged(cmd.Context(), f.root)
			})
		},
	}
	f.register(cmd)
	return cmd
}

// repoArg is the repository a git scan reads: PATH, or the current
// directory.
func repoArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return "."
}

// openScanCache opens the scan cache; a cache another scan holds is
// skipped (nil) rather than waited for.
func openScanCache(path string) (*scanner.Cache, error) {
	if path == "" {
		p, err := scanner.DefaultCachePath()
		if err != nil {
			return nil, nil // no cache directory: scan without
		}
		path = p
	}
	c, err := scanner.OpenCache(path)
	if errors.Is(err, scanner.ErrCacheBusy) {
		return nil, nil
	}
	return c, err
}

func newScanFileCmd(a *scanCmds) *cobra.Command {
	var f ScanFlags
	cmd := &cobra.Command{
		Use:   "file PATH|-",
		Short: "Scan one file, or standard input",
		Args:  ExactArgs("PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runScan(cmd.Context(), &f, func(s *scanner.Scanner) ([]scanner.Finding, scanner.Stats, error) {
				if args[0] == "-" {
					return s.ScanReader(cmd.Context(), "stdin", a.Env.Stdin)
				}
				file, err := os.Open(args[0])
				if err != nil {
					return nil, scanner.Stats{}, err
				}
				defer file.Close()
				return s.ScanReader(cmd.Context(), args[0], file)
			})
		},
	}
	f.register(cmd)
	return cmd
}

func newScanDirCmd(a *scanCmds) *cobra.Command {
	var f ScanFlags
	cmd := &cobra.Command{
		Use:   "dir PATH",
		Short: "Scan a directory tree (binary files are skipped and counted)",
		Args:  ExactArgs("PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.root = args[0]
			return a.runScan(cmd.Context(), &f, func(s *scanner.Scanner) ([]scanner.Finding, scanner.Stats, error) {
				return s.ScanDir(cmd.Context(), args[0])
			})
		},
	}
	f.register(cmd)
	return cmd
}

// runScan builds the scanner, runs scan and reports: exit 1 when something
// was found, 2 on any error.
func (a *scanCmds) runScan(ctx context.Context, f *ScanFlags, scan func(*scanner.Scanner) ([]scanner.Finding, scanner.Stats, error)) error {
	fail := func(err error) error { return &ExitError{Code: ExitScanError, Err: err} }
	format := f.format
	if format == "" {
		format = string(a.Out.Format)
	}
	if !slices.Contains(scanner.Formats, format) {
		return fail(UsageErrorf("unknown --format %q (want one of: %s)", format, strings.Join(scanner.Formats, ", ")))
	}
	if !slices.Contains(scanner.RuleSets, f.rules) {
		return fail(UsageErrorf("unknown --rules %q (want one of: %s)", f.rules, strings.Join(scanner.RuleSets, ", ")))
	}
	if f.show && !scanner.ShowsSecrets(format) {
		return fail(UsageErrorf("--show-secrets cannot be used with the %s format: its output lands in CI logs and views", format))
	}
	if f.Index != "" && f.Managed {
		return fail(UsageErrorf("--index and --managed are mutually exclusive"))
	}
	if f.Respond && !f.Managed {
		return fail(UsageErrorf("--respond needs --managed: the response acts on the store whose index recognised the leak"))
	}
	return a.withManaged(ctx, f, scanner.Options{ConfigPath: f.config, Rules: f.rules, ShowSecrets: f.show}, func(opts scanner.Options) error {
		s, err := scanner.New(opts)
		if err != nil {
			return fail(err)
		}
		baseline, ignore, err := f.filters()
		if err != nil {
			return fail(err)
		}
		findings, stats, err := scan(s)
		if err != nil {
			return fail(fmt.Errorf("scan: %w", err))
		}
		findings, _ = baseline.Filter(findings)
		findings, _ = ignore.Filter(findings)
		var respondErr error
		if f.Respond {
			respondErr = a.managed.Respond(ctx, findings)
		}
		if err := scanner.Write(a.Out.W, format, findings, stats, a.Env.Var); err != nil {
			return fail(err)
		}
		if respondErr != nil {
			return fail(respondErr)
		}
		if len(findings) > 0 {
			return &ReportedError{Code: ExitFailure, Msg: fmt.Sprintf("%d leaks found", len(findings))}
		}
		return nil
	})
}

// filters loads the baseline and the .gitleaksignore the flags name (or
// the scanned root holds).
func (f *ScanFlags) filters() (*scanner.Baseline, *scanner.Ignore, error) {
	fl, err := scanrun.LoadFilters(f.baseline, f.ignore, f.root)
	if err != nil {
		return nil, nil, err
	}
	return fl.Baseline, fl.Ignore, nil
}

// rangeGCMax is the most commits a range scan collects garbage for at
// 200 % growth; a longer range is collected as a history, at 25 %.
const rangeGCMax = 500

// rangeGC sets a range scan's garbage collection pace, then, once the
// scan knows its number of commits (its first progress report), keeps it
// or lowers it, and passes the reports on to next (which may be nil). A
// pull request's heap is a few MB, which at 25 % is collected every few
// hundred KB: at 200 % a 50-commit range takes ~10 % less CPU and 3 MB
// more peak RSS (30 → 33 MB, gitleaks 41). A range of thousands of commits
// is a history, whose RSS 200 % would put over gitleaks'.
func rangeGC(next func(done, total int)) func(done, total int) {
	debug.SetGCPercent(200)
	known := false
	return func(done, total int) {
		if !known {
			known = true
			if total > rangeGCMax {
				debug.SetGCPercent(25)
			}
		}
		if next != nil {
			next(done, total)
		}
	}
}

// Progress returns a progress reporter drawing on a terminal's standard
// error, or nil when standard error is not a terminal.
func (a *State) Progress(unit string) func(done, total int) {
	if a.Env.StderrIsTerminal == nil || !a.Env.StderrIsTerminal() {
		return nil
	}
	var last time.Time
	return func(done, total int) {
		now := time.Now()
		if done < total && now.Sub(last) < 200*time.Millisecond {
			return
		}
		last = now
		const width = 30
		filled := 0
		if total > 0 {
			filled = done * width / total
		}
		fmt.Fprintf(a.Env.Stderr, "\r[%s%s] %d/%d %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total, unit)
		if done == total {
			fmt.Fprintln(a.Env.Stderr)
		}
	}
}

// withManaged runs scan with opts completed by the full program for
// --index or --managed; without either it runs scan as it is.
func (a *scanCmds) withManaged(ctx context.Context, f *ScanFlags, opts scanner.Options, scan func(scanner.Options) error) error {
	if a.managed != nil {
		return a.managed.WithManaged(ctx, f, opts, scan)
	}
	if f.Index != "" || f.Managed {
		// Serves hands these to the full program; reaching here is a bug
		// that must not quietly scan without the managed index.
		return &ExitError{Code: ExitScanError, Err: errors.New("--index and --managed need the full passman program")}
	}
	return scan(opts)
}
