// Command benchaction measures the GitHub Action's scan on a pull request:
// `passman action run` (the action's entry point, with the environment a
// runner gives it for a pull_request event) against `gitleaks git
// --log-opts=BASE..HEAD` (what gitleaks-action runs), on the last N
// first-parent commits of the deterministic benchmark repository
// (internal/benchrepo, the one `make bench-scan` builds and reuses). It
// prints both times, their ratio, and checks that passman's findings
// include every secret gitleaks reports. It is what `make bench-action`
// runs.
//
//	go run ./scripts/benchaction -passman bin/passman -gitleaks .tools/gitleaks
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/passman-dev/passman/internal/benchrepo"
	"github.com/passman-dev/passman/scanner"
)

func main() {
	passman := flag.String("passman", "bin/passman", "passman binary")
	gitleaks := flag.String("gitleaks", ".tools/gitleaks", "gitleaks binary (v8.30.1)")
	work := flag.String("work", filepath.Join(os.TempDir(), "passman-bench-scan"), "work directory (shared with bench-scan: the repository is reused)")
	commits := flag.Int("commits", 10000, "commits on the benchmark repository's main line")
	seed := flag.Uint64("seed", 1, "benchmark repository seed")
	prCommits := flag.Int("pr", 50, "first-parent commits in the pull request")
	runs := flag.Int("runs", 3, "runs of each tool; the median is reported")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *passman, *gitleaks, *work, *commits, *seed, *prCommits, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "benchaction:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, passman, gitleaks, work string, commits int, seed uint64, prCommits, runs int) error {
	for _, bin := range []string{passman, gitleaks} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("binary: %w", err)
		}
	}
	passman, _ = filepath.Abs(passman)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	repo := filepath.Join(work, fmt.Sprintf("repo-%d-%d", commits, seed))
	if err := buildRepo(ctx, repo, commits, seed); err != nil {
		return err
	}
	rev := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, "git", append([]string{"-C", repo}, args...)...).Output()
		return strings.TrimSpace(string(out)), err
	}
	head, err := rev("rev-parse", "HEAD")
	if err != nil {
		return err
	}
	base, err := rev("rev-parse", fmt.Sprintf("HEAD~%d", prCommits))
	if err != nil {
		return err
	}
	n, err := rev("rev-list", "--count", base+".."+head)
	if err != nil {
		return err
	}
	fmt.Printf("pull request %s..%s: %d first-parent commits, %s commits in the range\n", base[:12], head[:12], prCommits, n)

	tmp, err := os.MkdirTemp("", "passman-bench-action-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	event := filepath.Join(tmp, "event.json")
	payload := map[string]any{"number": 1, "pull_request": map[string]any{"number": 1, "commits": prCommits,
		"base": map[string]any{"sha": base, "repo": map[string]any{"full_name": "bench/repo"}},
		"head": map[string]any{"sha": head, "repo": map[string]any{"full_name": "bench/repo"}}}}
	b, _ := json.Marshal(payload)
	if err := os.WriteFile(event, b, 0o600); err != nil {
		return err
	}
	glReport := filepath.Join(tmp, "gitleaks.json")
	var pmTimes, glTimes []time.Duration
	var pmReport string
	for i := range runs {
		runTmp := filepath.Join(tmp, fmt.Sprint("run", i))
		if err := os.MkdirAll(runTmp, 0o700); err != nil {
			return err
		}
		output := filepath.Join(runTmp, "output")
		env := append(os.Environ(),
			"GITHUB_ACTIONS=true", "GITHUB_EVENT_NAME=pull_request", "GITHUB_EVENT_PATH="+event,
			"GITHUB_WORKSPACE="+repo, "GITHUB_REPOSITORY=bench/repo", "GITHUB_OUTPUT="+output,
			"GITHUB_STEP_SUMMARY="+filepath.Join(runTmp, "summary.md"), "RUNNER_TEMP="+runTmp,
			"INPUT_COMMAND=scan", "INPUT_PATH=.", "INPUT_FAIL-ON=none", "INPUT_COMMENT=false", "INPUT_CACHE-FILE=none",
		)
		d, err := timed(ctx, env, passman, "action", "run")
		if err != nil {
			return fmt.Errorf("passman action run: %w", err)
		}
		pmTimes = append(pmTimes, d)
		if pmReport, err = outputOf(output, "report"); err != nil {
			return err
		}
		d, err = timed(ctx, nil, gitleaks, "git", "--no-banner", "--log-level", "error", "--exit-code", "0",
			"--log-opts="+base+".."+head, "--report-format", "json", "--report-path", glReport, repo)
		if err != nil {
			return fmt.Errorf("gitleaks: %w", err)
		}
		glTimes = append(glTimes, d)
	}
	pm, gl := median(pmTimes), median(glTimes)
	fmt.Printf("%-44s %8.3fs  (runs: %v)\n", "passman action run (scan, pull_request)", pm.Seconds(), round(pmTimes))
	fmt.Printf("%-44s %8.3fs  (runs: %v)\n", "gitleaks git --log-opts=BASE..HEAD", gl.Seconds(), round(glTimes))
	fmt.Printf("ratio passman/gitleaks: %.2fx (goal <= 0.5x)\n", pm.Seconds()/gl.Seconds())
	return superset(glReport, pmReport)
}

// buildRepo reuses the repository bench-scan built (same options, same
// planted values), or builds it.
func buildRepo(ctx context.Context, dir string, commits int, seed uint64) error {
	if b, err := os.ReadFile(dir + ".json"); err == nil {
		var m benchrepo.Manifest
		if json.Unmarshal(b, &m) == nil && m.Head != "" {
			fmt.Printf("reusing %s\n", dir)
			return nil
		}
	}
	_ = os.RemoveAll(dir)
	sources, err := benchrepo.SourceDirs(ctx, ".")
	if err != nil {
		return err
	}
	start := time.Now()
	m, err := benchrepo.Build(ctx, dir, benchrepo.Options{Commits: commits, Seed: seed, Sources: sources, Extra: managedValues(seed)})
	if err != nil {
		return err
	}
	fmt.Printf("built %s in %s\n", dir, time.Since(start).Round(time.Second))
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(dir+".json", b, 0o644)
}

// managedValues are scripts/benchscan's, so both build the same
// repository.
func managedValues(seed uint64) [][]byte {
	var out [][]byte
	for i := range 5 {
		h := sha256.Sum256(fmt.Appendf(nil, "passman-bench-managed-%d-%d", seed, i))
		out = append(out, []byte(hex.EncodeToString(h[:])[:12]+"Xq"+hex.EncodeToString(h[20:])[:10]))
	}
	return out
}

func timed(ctx context.Context, env []string, args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = env
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("%w: %s", err, out.String())
	}
	return d, nil
}

// outputOf reads one step output from a $GITHUB_OUTPUT file.
func outputOf(file, name string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if n, delim, ok := strings.Cut(l, "<<"); ok && n == name && i+1 < len(lines) && (i+2 >= len(lines) || lines[i+2] == delim) {
			return lines[i+1], nil
		}
	}
	return "", fmt.Errorf("no output %s in %s", name, file)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func round(ds []time.Duration) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%.3fs", d.Seconds()))
	}
	return out
}

// superset checks that every secret gitleaks reports in the range is in
// passman's report (same rule, file and secret: the content fingerprint).
func superset(glReport, pmReport string) error {
	var gl []struct{ RuleID, File, Secret, Commit string }
	var pm []struct{ RuleID, File, Fingerprint string }
	for _, x := range []struct {
		file string
		v    any
	}{{glReport, &gl}, {pmReport, &pm}} {
		b, err := os.ReadFile(x.file)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, x.v); err != nil {
			return fmt.Errorf("%s: %w", x.file, err)
		}
	}
	ours := map[string]bool{}
	for _, f := range pm {
		ours[f.Fingerprint] = true
	}
	var missing []string
	theirs := map[string]bool{}
	for _, f := range gl {
		fp := scanner.ContentFingerprint(f.RuleID, f.File, []byte(f.Secret))
		theirs[fp] = true
		if !ours[fp] {
			missing = append(missing, f.RuleID+" in "+f.File+" at "+f.Commit[:min(12, len(f.Commit))])
		}
	}
	sort.Strings(missing)
	fmt.Printf("findings: gitleaks %d (%d distinct), passman %d; gitleaks' missing from passman: %d\n", len(gl), len(theirs), len(pm), len(missing))
	for _, m := range missing {
		fmt.Println("  missing:", m)
	}
	if len(missing) > 0 {
		return errors.New("passman's findings do not include all of gitleaks'")
	}
	return nil
}
