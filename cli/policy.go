package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/internal/regalexec"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/policy/regotool"
)

func newPolicyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Test, lint, format and evaluate Rego policies; store them in the store",
		Long: `Policies are Rego v1 modules. Three decision points:
  data.passman.authz    who may do what (deny by default)
  data.passman.lint     what a compliant secret looks like (deny / warn / exception)
  data.passman.respond  what to do when a managed secret is found leaked
Their input schemas are published under policy/schema/.

test, lint, fmt and eval work on files. push, list, get and delete administer
the modules the store holds (on the server when --addr or PASSMAN_ADDR is
set), which every process opening the store decides with, together with the
bundled policies and --policies.`,
		Args: clibase.GroupArgs,
		RunE: clibase.GroupRun,
	}
	cmd.AddCommand(newPolicyTestCmd(a), newPolicyLintCmd(a), newPolicyFmtCmd(a), newPolicyEvalCmd(a),
		newPolicyPushCmd(a), newPolicyListCmd(a), newPolicyGetCmd(a), newPolicyDeleteCmd(a))
	return cmd
}

// dirArg is the optional directory argument of the policy commands.
func dirArg(args []string) string {
	if len(args) == 0 {
		return "."
	}
	return args[0]
}

func newPolicyTestCmd(a *app) *cobra.Command {
	var coverageMin float64
	cmd := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run the Rego unit tests under DIR, with coverage",
		Long: `Run every test_ rule in the *_test.rego files under DIR (default: the current
directory), together with passman's bundled policies, and report each test
and the coverage of the policies. Exits 1 if a test fails or errors, or if
coverage is below --coverage-min.`,
		Args: clibase.RangeArgs(0, 1, "[DIR]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if coverageMin < 0 || coverageMin > 100 {
				return clibase.UsageErrorf("--coverage-min %v: want a percentage between 0 and 100", coverageMin)
			}
			rep, err := regotool.Test(cmd.Context(), dirArg(args), regotool.TestOptions{Bundled: policy.BundledModules()})
			if err != nil {
				return fmt.Errorf("policy test: %w", err)
			}
			if err := regotool.WriteTest(a.Out.W, string(a.Out.Format), rep); err != nil {
				return err
			}
			switch {
			case rep.Failed > 0 || rep.Errored > 0:
				return &clibase.ReportedError{Code: clibase.ExitFailure, Msg: fmt.Sprintf("%d failed, %d errored", rep.Failed, rep.Errored)}
			case rep.Coverage < coverageMin:
				fmt.Fprintf(a.Env.Stderr, "passman: coverage %.1f%% is below --coverage-min %.1f%%\n", rep.Coverage, coverageMin)
				return &clibase.ReportedError{Code: clibase.ExitFailure, Msg: "coverage below minimum"}
			}
			return nil
		},
	}
	cmd.Flags().Float64Var(&coverageMin, "coverage-min", 0, "fail when coverage is below this percentage")
	return cmd
}

func newPolicyLintCmd(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "lint [DIR]",
		Short: "Check Rego files: compile errors, formatting, Regal rules",
		Long: `Check every .rego file under DIR (default: the current directory): strict
compile errors with file:line:col, formatting drift (as 'passman policy fmt'
would fix), and Regal's linter rules (a .regal/config.yaml in DIR is
honoured). --format github prints GitHub workflow annotations. Exits 1 when
there are errors.`,
		Args: clibase.RangeArgs(0, 1, "[DIR]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format == "" {
				format = string(a.Out.Format)
			}
			if !slices.Contains(regotool.LintFormats, format) {
				return clibase.UsageErrorf("unknown --format %q (want one of: %s)", format, strings.Join(regotool.LintFormats, ", "))
			}
			// Regal runs in a program of its own: linking it would cost
			// every passman command its start-up.
			prog, err := regalexec.Find()
			if err != nil {
				return fmt.Errorf("policy lint: %w", err)
			}
			rep, err := regalexec.Lint(cmd.Context(), prog, dirArg(args))
			if err != nil {
				return fmt.Errorf("policy lint: %w", err)
			}
			if err := regotool.WriteLint(a.Out.W, format, rep); err != nil {
				return err
			}
			if n := rep.Errors(); n > 0 {
				return &clibase.ReportedError{Code: clibase.ExitFailure, Msg: fmt.Sprintf("%d errors", n)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "report format: "+strings.Join(regotool.LintFormats, ", ")+" (default: the -o format)")
	cmd.Annotations = map[string]string{clibase.AnnotationFormats: strings.Join(regotool.LintFormats, ",")}
	return cmd
}

func newPolicyFmtCmd(a *app) *cobra.Command {
	var write, check bool
	cmd := &cobra.Command{
		Use:   "fmt [DIR]",
		Short: "Format Rego files with OPA's formatter",
		Long: `List the .rego files under DIR that are not formatted; -w rewrites them in
place, --check exits 1 if any would change.`,
		Args: clibase.RangeArgs(0, 1, "[DIR]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if write && check {
				return clibase.UsageErrorf("-w and --check are mutually exclusive")
			}
			dir := dirArg(args)
			var files []string
			if write {
				var err error
				if files, err = regotool.FormatFiles(dir); err != nil {
					return fmt.Errorf("policy fmt: %w", err)
				}
			} else {
				changed, err := regotool.Format(dir)
				if err != nil {
					return fmt.Errorf("policy fmt: %w", err)
				}
				for f := range changed {
					files = append(files, f)
				}
				slices.Sort(files)
			}
			if files == nil {
				files = []string{}
			}
			if err := a.Out.Emit(map[string]any{"files": files, "written": write}, func(w io.Writer) error {
				for _, f := range files {
					if _, err := fmt.Fprintln(w, f); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return err
			}
			if check && len(files) > 0 {
				return &clibase.ReportedError{Code: clibase.ExitFailure, Msg: fmt.Sprintf("%d files need formatting", len(files))}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&write, "write", "w", false, "rewrite files in place")
	cmd.Flags().BoolVar(&check, "check", false, "exit 1 if any file needs formatting")
	return cmd
}

// maxInputSize bounds a policy eval input file: what a server accepts.
const maxInputSize = api.MaxPolicyInput

func newPolicyEvalCmd(a *app) *cobra.Command {
	var decision, inputFile string
	var explain bool
	cmd := &cobra.Command{
		Use:   "eval --decision authz|lint|respond --input FILE",
		Short: "Evaluate a decision on an input and show why",
		Long: `Evaluate one decision point over the bundled policies and those in
--policies, on the JSON input in FILE ("-" for standard input), and print
the result; --explain adds the evaluation trace.

With a server address set (--addr or PASSMAN_ADDR), the server's policies
decide instead, as they do for the server's requests: an admin action on
the server, audited there (the decision's name, never the input).`,
		Args: clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(policy.Decisions, decision) {
				return clibase.UsageErrorf("--decision %q: want authz, lint or respond", decision)
			}
			if inputFile == "" {
				return clibase.UsageErrorf("--input is required")
			}
			if a.remoteAddr() != "" && a.flags.policies != "" {
				return clibase.UsageErrorf("--policies names local policies, but a server address is set (--addr or %s): the server's policies decide", envAddr)
			}
			input, err := a.readJSONInput(inputFile)
			if err != nil {
				return err
			}
			res, err := a.evalPolicy(cmd.Context(), decision, input, explain)
			if err != nil {
				return fmt.Errorf("policy eval: %w", err)
			}
			return a.Out.Emit(res, func(w io.Writer) error {
				b, err := json.MarshalIndent(res.Result, "", "  ")
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
					return err
				}
				for _, line := range res.Explanation {
					if _, err := fmt.Fprintln(w, line); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&decision, "decision", "", "decision point: authz, lint or respond")
	cmd.Flags().StringVar(&inputFile, "input", "", "JSON input file, - for standard input")
	cmd.Flags().BoolVar(&explain, "explain", false, "show the evaluation trace")
	return cmd
}

// evalPolicy evaluates decision on input with the server's policies when
// an address is set, else with the bundled ones and those in --policies
// (no store needed).
func (a *app) evalPolicy(ctx context.Context, decision string, input json.RawMessage, explain bool) (policy.EvalResult, error) {
	if a.remoteAddr() != "" {
		c, err := a.remoteClient()
		if err != nil {
			return policy.EvalResult{}, err
		}
		return c.EvalPolicy(ctx, decision, input, explain)
	}
	eng, err := policy.New(ctx, policy.Options{Dir: a.policyDir()})
	if err != nil {
		return policy.EvalResult{}, fmt.Errorf("load policies: %w", err)
	}
	return eng.Eval(ctx, decision, input, explain)
}

// readJSONInput reads a bounded JSON document from a file or stdin and
// checks it, without decoding it: the engine, local or the server's, gets
// the document as written, numbers exactly.
func (a *app) readJSONInput(name string) (json.RawMessage, error) {
	var r io.Reader = a.Env.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, clibase.UsageErrorf("--input: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInputSize+1))
	if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	if len(b) > maxInputSize {
		return nil, clibase.UsageErrorf("--input is larger than %d bytes", maxInputSize)
	}
	var v json.RawMessage
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, clibase.UsageErrorf("--input is not valid JSON: %v", err)
	}
	return v, nil
}
