package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/scanner"
)

// Exit codes of passman scan, as gitleaks': 0 clean, 1 leaks found, 2 error.
const exitScanError = 2

type scanFlags struct {
	config  string
	index   string
	managed bool
	format  string
}

func (f *scanFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.config, "config", "", "a .gitleaks.toml extending the default rules")
	cmd.Flags().StringVar(&f.index, "index", "", "fingerprint index from 'passman fingerprints export', to recognise managed secrets")
	cmd.Flags().BoolVar(&f.managed, "managed", false, "recognise managed secrets using this store's index")
	cmd.Flags().StringVar(&f.format, "format", "", "report format: "+strings.Join(scanner.Formats, ", ")+" (default: the -o format)")
}

func newScanCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Find leaked secrets: gitleaks' rules plus passman's own managed secrets",
		Long: `Scan files for secrets with gitleaks' rules and, with --index or --managed,
recognise passman's own managed secrets by keyed fingerprint (a random
password matches no rule). Findings never show the secret.

Exit codes, as gitleaks: 0 nothing found, 1 leaks found, 2 error.`,
		Args: groupArgs,
		RunE: groupRun,
	}
	cmd.AddCommand(newScanFileCmd(a), newScanDirCmd(a))
	return cmd
}

func newScanFileCmd(a *app) *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "file PATH|-",
		Short: "Scan one file, or standard input",
		Args:  exactArgs("PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runScan(cmd.Context(), &f, func(s *scanner.Scanner) ([]scanner.Finding, scanner.Stats, error) {
				if args[0] == "-" {
					return s.ScanReader(cmd.Context(), "stdin", a.env.Stdin)
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

func newScanDirCmd(a *app) *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "dir PATH",
		Short: "Scan a directory tree (binary files are skipped and counted)",
		Args:  exactArgs("PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
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
func (a *app) runScan(ctx context.Context, f *scanFlags, scan func(*scanner.Scanner) ([]scanner.Finding, scanner.Stats, error)) error {
	fail := func(err error) error { return &exitError{code: exitScanError, err: err} }
	format := f.format
	if format == "" {
		format = string(a.out.format)
	}
	if !slices.Contains(scanner.Formats, format) {
		return fail(usageErrorf("unknown --format %q (want one of: %s)", format, strings.Join(scanner.Formats, ", ")))
	}
	if f.index != "" && f.managed {
		return fail(usageErrorf("--index and --managed are mutually exclusive"))
	}
	opts := scanner.Options{ConfigPath: f.config}
	ix, err := a.scanIndex(ctx, f)
	if err != nil {
		return fail(err)
	}
	if ix != nil {
		opts.Managed = ix
	}
	s, err := scanner.New(opts)
	if err != nil {
		return fail(err)
	}
	findings, stats, err := scan(s)
	if err != nil {
		return fail(fmt.Errorf("scan: %w", err))
	}
	if err := scanner.Write(a.out.w, format, findings, stats); err != nil {
		return fail(err)
	}
	if len(findings) > 0 {
		return &reportedError{code: ExitFailure, msg: fmt.Sprintf("%d leaks found", len(findings))}
	}
	return nil
}

// scanIndex loads the fingerprint index the flags name, if any.
func (a *app) scanIndex(ctx context.Context, f *scanFlags) (*fpindex.Index, error) {
	switch {
	case f.index != "":
		file, err := os.Open(f.index)
		if err != nil {
			return nil, fmt.Errorf("--index: %w", err)
		}
		defer file.Close()
		return fpindex.Read(file)
	case f.managed:
		var buf bytes.Buffer
		err := a.withLocal(ctx, func(l *core.Local, _ config) error {
			_, err := l.ExportFingerprints(ctx, &buf)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("--managed: %w", err)
		}
		return fpindex.Read(&buf)
	}
	return nil, nil
}
