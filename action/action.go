// Package action is passman's GitHub Action: one entry point (Main, run
// as `passman action run` and, as the action's post step, `passman
// action post`) with three commands chosen by the input "command":
//
//	scan     a pre-merge leak scan of the commits the event brings
//	secrets  deliver secrets from a passman server to the job (OIDC login)
//	policy   test and lint Rego policies, lint and plan the manifest
//
// It is a front end like the CLI: inputs become calls on the scanner, the
// client and the policy tools, results become workflow commands, step
// outputs, a step summary and a pull-request comment. action.yml at the
// repository root runs it; see "GitHub Action" in docs/github-action.md.
package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/sethvargo/go-githubactions"
)

// Exit codes: the step fails on anything but ExitOK.
const (
	ExitOK = 0
	// ExitFailed: the check failed (leaks per fail-on, a policy deny).
	ExitFailed = 1
	// ExitError: the action could not do its job.
	ExitError = 2
)

// Env is the process environment a run sees; tests build their own.
type Env struct {
	// Getenv reads the step's environment (INPUT_*, GITHUB_*, RUNNER_*).
	Getenv func(string) string
	// Stdout is the step log, where workflow commands go.
	Stdout io.Writer
	// HTTPClient makes the GitHub API requests; nil means a default one.
	HTTPClient *http.Client
}

// OSEnv returns the running process's environment.
func OSEnv() Env {
	return Env{Getenv: os.Getenv, Stdout: os.Stdout}
}

// command is one of the action's commands: its run step, and its post
// step (nil: nothing to clean up).
type command struct {
	name string
	run  func(*run) (int, error)
	post func(*run) error
}

// commands is the one list of the action's commands: action.yml's
// "command" input documents the same names, and a test checks it.
var commands = []command{
	{name: "scan", run: runScan},
	{name: "secrets", run: runSecrets, post: postSecrets},
	{name: "policy", run: runPolicy},
}

// run is the state of one invocation.
type run struct {
	ctx    context.Context
	env    Env
	gh     *githubactions.Action
	getenv func(string) string
	// outputs, envFile and state are $GITHUB_OUTPUT, $GITHUB_ENV and
	// $GITHUB_STATE, written with a random delimiter (fileCommand).
	outputs, envFile, state *fileCommand
}

// Main runs the action: args is ["run"] or ["post"]. It returns the exit
// code; only main exits.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	r := &run{
		ctx:    ctx,
		env:    env,
		getenv: env.Getenv,
		gh:     githubactions.New(githubactions.WithGetenv(env.Getenv), githubactions.WithWriter(env.Stdout)),
	}
	r.outputs = newFileCommand(env.Getenv("GITHUB_OUTPUT"))
	r.envFile = newFileCommand(env.Getenv("GITHUB_ENV"))
	r.state = newFileCommand(env.Getenv("GITHUB_STATE"))
	phase := "run"
	if len(args) > 0 {
		phase = args[0]
	}
	name := r.input("command")
	var cmd *command
	for i := range commands {
		if commands[i].name == name {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		names := make([]string, len(commands))
		for i, c := range commands {
			names[i] = c.name
		}
		r.gh.Errorf("input command %q: want one of %s", name, strings.Join(names, ", "))
		return ExitError
	}
	switch phase {
	case "run":
		code, err := cmd.run(r)
		if err != nil {
			r.gh.Errorf("passman %s: %s", cmd.name, oneLine(err))
			if code == ExitOK {
				code = ExitError
			}
		}
		return code
	case "post":
		if cmd.post == nil {
			return ExitOK
		}
		if err := cmd.post(r); err != nil {
			// A post step that fails cannot change the job's outcome, so
			// it warns: the run step's result stands.
			r.gh.Warningf("passman %s (post): %s", cmd.name, oneLine(err))
		}
		return ExitOK
	default:
		r.gh.Errorf("unknown phase %q (want run or post)", phase)
		return ExitError
	}
}

func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

// input reads an input, trimmed.
func (r *run) input(name string) string { return r.gh.GetInput(name) }

// boolInput reads a boolean input as GitHub's toolkit does (true/True/TRUE,
// false/False/FALSE); "" is def.
func (r *run) boolInput(name string, def bool) (bool, error) {
	switch r.input(name) {
	case "":
		return def, nil
	case "true", "True", "TRUE":
		return true, nil
	case "false", "False", "FALSE":
		return false, nil
	}
	return false, fmt.Errorf("input %s: want true or false", name)
}

// setOutput sets a step output.
func (r *run) setOutput(name, value string) error {
	if r.outputs.path == "" {
		return nil // outside a step (a local run): nothing reads outputs
	}
	return r.outputs.set(name, value)
}

// summary appends Markdown to the step summary, if the step has one.
func (r *run) summary(md string) error {
	p := r.getenv("GITHUB_STEP_SUMMARY")
	if p == "" {
		return nil
	}
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("step summary: %w", err)
	}
	_, werr := io.WriteString(f, md+"\n")
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("step summary: %w", err)
	}
	return nil
}

// workDir is the checkout the action works in: input path, relative to
// the workspace.
func (r *run) workDir() string {
	p := r.input("path")
	if p == "" {
		p = "."
	}
	if ws := r.getenv("GITHUB_WORKSPACE"); ws != "" && !isAbs(p) {
		return ws + string(os.PathSeparator) + p
	}
	return p
}

func isAbs(p string) bool {
	return strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) || (len(p) > 1 && p[1] == ':')
}

// tempDir is a new private directory under $RUNNER_TEMP (the runner
// empties it after the job), never the workspace, which later steps may
// upload or cache.
func (r *run) tempDir(prefix string) (string, error) {
	base := r.getenv("RUNNER_TEMP")
	if base == "" {
		base = os.TempDir()
	}
	d, err := os.MkdirTemp(base, prefix)
	if err != nil {
		return "", fmt.Errorf("temporary directory: %w", err)
	}
	if err := os.Chmod(d, 0o700); err != nil {
		return "", fmt.Errorf("temporary directory: %w", err)
	}
	return d, nil
}
