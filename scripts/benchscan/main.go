// Command benchscan runs `passman scan git` and `gitleaks git` side by side
// on the deterministic benchmark repository (internal/benchrepo) and prints
// wall time, CPU time, MB/s and peak memory of each, their ratio, and a
// parity check: every secret gitleaks reports must be reported by passman
// (same rule, file and secret). Then, on a merge-heavy repository shaped
// like busy real projects, it compares in alternating runs (medians) the
// whole history, a 50-commit pull request range, a one-file `scan staged`
// against `gitleaks protect --staged`, and start-up (`--version` and a
// scan of empty standard input, many alternating runs). passman runs with
// --rules gitleaks throughout: the same rules as gitleaks. Peak memory is
// the process's own, split into anonymous memory (heap, stacks, C heap) and
// resident pages of the executable and libraries (RssFile), with the load
// average before and after each comparison: the machine may be shared. It
// is what `make bench-scan` runs.
//
//	go run ./scripts/benchscan -passman bin/passman -gitleaks .tools/gitleaks
//	go run ./scripts/benchscan -startup-only -startup-runs 200
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/internal/benchrepo"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/scanner"
	"github.com/passman-dev/passman/secret"
)

func main() {
	var o opts
	flag.StringVar(&o.passman, "passman", "bin/passman", "passman binary")
	flag.StringVar(&o.gitleaks, "gitleaks", ".tools/gitleaks", "gitleaks binary (v8.30.1)")
	flag.StringVar(&o.work, "work", filepath.Join(os.TempDir(), "passman-bench-scan"), "work directory (the repository is kept and reused)")
	flag.IntVar(&o.commits, "commits", 10000, "commits on the benchmark repository's main line (0 skips it: merge-heavy comparisons only)")
	flag.Uint64Var(&o.seed, "seed", 1, "benchmark repository seed")
	flag.IntVar(&o.indexSize, "index-size", 100000, "managed fingerprints in the index for the managed run")
	flag.IntVar(&o.mergeCommits, "merge-heavy-commits", 2000, "main-line commits of the merge-heavy repository (0 skips it)")
	flag.IntVar(&o.runs, "runs", 5, "alternating runs per comparison on the merge-heavy repository")
	flag.IntVar(&o.startupRuns, "startup-runs", 100, "alternating runs per start-up comparison")
	flag.BoolVar(&o.startupOnly, "startup-only", false, "compare start-up only (no repository is built)")
	flag.StringVar(&o.baseline, "baseline", "", "another passman binary (an earlier build) to add to the start-up comparisons")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "benchscan:", err)
		os.Exit(1)
	}
}

type opts struct {
	passman, gitleaks, work string
	baseline                string
	commits, indexSize      int
	mergeCommits, runs      int
	startupRuns             int
	startupOnly             bool
	seed                    uint64
}

// measurement is one run of one command.
type measurement struct {
	name      string
	wall, cpu time.Duration
	maxRSS    int64 // KiB: the command's own process, not git's (0 if it ended before the first look)
	// anon and file are the largest RssAnon and RssFile seen (KiB).
	anon, file int64
}

func run(ctx context.Context, o opts) error {
	if err := os.MkdirAll(filepath.Join(o.work, "bin"), 0o755); err != nil {
		return err
	}
	// Both programs run from copies written the same way, as an install
	// writes them: how a file was written decides how the kernel caches
	// it (the linker's output can sit in 2 MB pages, mapped whole), and so
	// how much of the executable counts in a process's RSS.
	bins := []*string{&o.passman, &o.gitleaks}
	if o.baseline != "" {
		bins = append(bins, &o.baseline)
	}
	// passman is a front that hands every command but scans and --version
	// to passman-full beside it (the managed scans here among them): a
	// copy of passman goes into a directory of its own with a copy of its
	// passman-full, so start-up rows measure the front and the rest still
	// runs. A build from before the split has none (nor needs one).
	for i, bin := range bins {
		dir := filepath.Join(o.work, "bin", strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.Base(*bin))
		if err := copyFile(*bin, dst); err != nil {
			return fmt.Errorf("binary: %w", err)
		}
		if bin != &o.gitleaks {
			full := filepath.Join(filepath.Dir(*bin), "passman-full")
			err := copyFile(full, filepath.Join(dir, "passman-full"))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("passman-full beside %s: %w", *bin, err)
			}
		}
		*bin = dst
	}
	if o.startupOnly {
		return startup(ctx, o)
	}
	if o.commits == 0 {
		return mergeHeavy(ctx, o)
	}
	repo := filepath.Join(o.work, fmt.Sprintf("repo-%d-%d", o.commits, o.seed))
	m, extras, err := buildRepo(ctx, o, repo)
	if err != nil {
		return err
	}
	index := filepath.Join(o.work, "fingerprints.json")
	if err := writeIndex(index, extras, o.indexSize); err != nil {
		return err
	}
	mb := float64(m.AddedBytes) / 1e6
	fmt.Printf("repository: %d commits (%d on main), %.1f MB of added lines, %d planted secrets\n\n",
		m.Commits, o.commits, mb, len(m.Planted))

	glReport := filepath.Join(o.work, "gitleaks.json")
	pmReport := filepath.Join(o.work, "passman.json")
	cache := filepath.Join(o.work, "scan-cache.db")
	_ = os.Remove(cache)
	var ms []measurement
	step := func(name string, stdout string, args ...string) error {
		r, err := measure(ctx, name, stdout, args...)
		if err != nil {
			return err
		}
		ms = append(ms, r)
		return nil
	}
	if err := step("gitleaks git", "", o.gitleaks, "git", "--no-banner", "--log-level", "error", "--exit-code", "0",
		"--report-format", "json", "--report-path", glReport, repo); err != nil {
		return err
	}
	if err := step("passman scan git", pmReport, o.passman, "scan", "git", "--rules", "gitleaks", "--no-cache", "-o", "json", repo); err != nil {
		return err
	}
	if err := step("passman scan git --index (managed)", filepath.Join(o.work, "passman-managed.json"),
		o.passman, "scan", "git", "--no-cache", "--index", index, "-o", "json", repo); err != nil {
		return err
	}
	if err := step("passman, filling the cache", "", o.passman, "scan", "git", "--cache-file", cache, "-o", "json", repo); err != nil {
		return err
	}
	if err := step("passman, second scan (cached)", "", o.passman, "scan", "git", "--cache-file", cache, "-o", "json", repo); err != nil {
		return err
	}
	if err := step("passman --range HEAD~50..HEAD", "", o.passman, "scan", "git", "--no-cache", "--range", "HEAD~50..HEAD", "-o", "json", repo); err != nil {
		return err
	}

	fmt.Printf("%-38s %9s %9s %9s %10s\n", "run", "wall", "cpu", "MB/s", "peak RSS")
	for _, r := range ms {
		fmt.Printf("%-38s %8.2fs %8.2fs %9.1f %7d MB\n", r.name, r.wall.Seconds(), r.cpu.Seconds(), mb/r.wall.Seconds(), r.maxRSS/1024)
	}
	gl, pm, managed, cached := ms[0], ms[1], ms[2], ms[4]
	fmt.Printf("\nspeed-up over gitleaks (wall): %.2fx   cpu: %.2fx\n", gl.wall.Seconds()/pm.wall.Seconds(), gl.cpu.Seconds()/pm.cpu.Seconds())
	fmt.Printf("managed matching with %d fingerprints adds: %+.1f%% wall\n", o.indexSize, 100*(managed.wall.Seconds()/pm.wall.Seconds()-1))
	fmt.Printf("second scan with the cache: %.1f%% of the first\n", 100*cached.wall.Seconds()/pm.wall.Seconds())
	fmt.Printf("50-commit range on %d commits: %.2fs\n\n", m.Commits, ms[5].wall.Seconds())
	if err := parity(glReport, pmReport, filepath.Join(o.work, "passman-managed.json"), m); err != nil {
		return err
	}
	if o.mergeCommits == 0 {
		return nil
	}
	return mergeHeavy(ctx, o)
}

// mergeHeavy compares passman and gitleaks on the merge-heavy repository:
// whole history, a 50-commit range, a one-file staged change, start-up.
func mergeHeavy(ctx context.Context, o opts) error {
	repo := filepath.Join(o.work, fmt.Sprintf("merge-heavy-%d-%d", o.mergeCommits, o.seed))
	manifestFile := repo + ".json"
	var m benchrepo.Manifest
	if b, err := os.ReadFile(manifestFile); err != nil || json.Unmarshal(b, &m) != nil || m.Head == "" {
		_ = os.RemoveAll(repo)
		sources, err := benchrepo.SourceDirs(ctx, ".")
		if err != nil {
			return err
		}
		if m, err = benchrepo.Build(ctx, repo, benchrepo.Options{Commits: o.mergeCommits, Seed: o.seed, Sources: sources, MergeHeavy: true}); err != nil {
			return err
		}
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if err := os.WriteFile(manifestFile, b, 0o644); err != nil {
			return err
		}
	}
	git := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, "git", append([]string{"-C", repo}, args...)...).Output()
		return strings.TrimSpace(string(out)), err
	}
	merges, err := git("rev-list", "--all", "--merges", "--count")
	if err != nil {
		return err
	}
	fmt.Printf("merge-heavy repository: %d commits, %s merges, %.1f MB of added lines\n", m.Commits, merges, float64(m.AddedBytes)/1e6)

	glReport := filepath.Join(o.work, "gitleaks-mh.json")
	pmReport := filepath.Join(o.work, "passman-mh.json")
	history := []cmdline{
		{name: "gitleaks git", args: []string{o.gitleaks, "git", "--no-banner", "--log-level", "error", "--exit-code", "0", "--report-format", "json", "--report-path", glReport, repo}},
		{name: "passman scan git", stdout: pmReport, args: []string{o.passman, "scan", "git", "--rules", "gitleaks", "--no-cache", "-o", "json", repo}},
	}
	if err := compare(ctx, "whole history", max(o.runs/2, 1), history); err != nil {
		return err
	}
	if err := parity(glReport, pmReport, "", benchrepo.Manifest{}); err != nil {
		return err
	}

	// The base of a 50-commit range: the first-parent ancestor with 50
	// commits (merged branches' included) between it and HEAD.
	base := ""
	for k := 1; k < o.mergeCommits; k++ {
		n, err := git("rev-list", "--count", fmt.Sprintf("HEAD~%d..HEAD", k))
		if err != nil {
			return err
		}
		if c, _ := strconv.Atoi(n); c >= 50 {
			base, _ = git("rev-parse", fmt.Sprintf("HEAD~%d", k))
			fmt.Printf("pull request range: %s commits\n", n)
			break
		}
	}
	if base == "" {
		return errors.New("no 50-commit range")
	}
	pr := []cmdline{
		{name: "gitleaks git --log-opts=BASE..HEAD", args: []string{o.gitleaks, "git", "--no-banner", "--log-level", "error", "--exit-code", "0", "--log-opts=" + base + "..HEAD", repo}},
		{name: "passman scan git --range BASE..HEAD", args: []string{o.passman, "scan", "git", "--rules", "gitleaks", "--no-cache", "--range", base + "..HEAD", repo}},
	}
	if err := compare(ctx, "50-commit range", o.runs, pr); err != nil {
		return err
	}

	// A one-file change staged in a clone that shares the objects.
	staged := filepath.Join(o.work, "merge-heavy-staged")
	_ = os.RemoveAll(staged)
	if out, err := exec.CommandContext(ctx, "git", "clone", "-q", "--shared", repo, staged).CombinedOutput(); err != nil {
		return fmt.Errorf("clone: %w: %s", err, out)
	}
	defer os.RemoveAll(staged)
	file, err := git("ls-files", "*.go")
	if err != nil || file == "" {
		return fmt.Errorf("no Go file to change: %v", err)
	}
	file, _, _ = strings.Cut(file, "\n")
	f, err := os.OpenFile(filepath.Join(staged, file), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\n// staged change\nfunc stagedChange() int { return 42 }\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "git", "-C", staged, "add", file).CombinedOutput(); err != nil {
		return fmt.Errorf("git add: %w: %s", err, out)
	}
	if err := compare(ctx, "one-file staged change", o.runs, []cmdline{
		{name: "gitleaks protect --staged", args: []string{o.gitleaks, "protect", "--staged", "--no-banner", "--log-level", "error", "-s", staged}},
		{name: "passman scan staged", args: []string{o.passman, "scan", "staged", "--rules", "gitleaks", staged}},
	}); err != nil {
		return err
	}
	return startup(ctx, o)
}

// startup compares the cost of starting: `--version`, and a scan of empty
// standard input (a pre-commit hook's floor). Each run's peak memory is
// the kernel's (rusage): these commands start no child.
func startup(ctx context.Context, o opts) error {
	version := []cmdline{
		{name: "gitleaks version", args: []string{o.gitleaks, "version"}, short: true},
		{name: "passman --version", args: []string{o.passman, "--version"}, short: true},
	}
	stdin := []cmdline{
		{name: "gitleaks stdin", args: []string{o.gitleaks, "stdin", "--no-banner", "--log-level", "error"}, short: true},
		{name: "passman scan file -", args: []string{o.passman, "scan", "file", "-"}, short: true},
	}
	if o.baseline != "" {
		version = append(version, cmdline{name: "baseline passman --version", args: []string{o.baseline, "--version"}, short: true})
		stdin = append(stdin, cmdline{name: "baseline passman scan file -", args: []string{o.baseline, "scan", "file", "-"}, short: true})
	}
	if err := compare(ctx, "start-up: version", o.startupRuns, version); err != nil {
		return err
	}
	return compare(ctx, "start-up: empty standard input", o.startupRuns, stdin)
}

// cmdline is one command of a comparison; stdout "" discards its output.
// A short command's memory is read from rusage instead of sampled: the
// sampling would compete with it for the CPU.
type cmdline struct {
	name, stdout string
	args         []string
	short        bool
}

// compare runs the commands in turn, n rounds, and prints each one's
// median wall and CPU time and peak RSS, and the first's medians over the
// others': alternating rounds share the machine's load between them.
func compare(ctx context.Context, title string, n int, cmds []cmdline) error {
	walls := make([][]float64, len(cmds))
	cpus := make([][]float64, len(cmds))
	rss := make([]int64, len(cmds))
	anon := make([]int64, len(cmds))
	file := make([]int64, len(cmds))
	load := loadavg()
	for range n {
		for i, c := range cmds {
			run := measure
			if c.short {
				run = measureShort
			}
			m, err := run(ctx, c.name, c.stdout, c.args...)
			if err != nil {
				return err
			}
			walls[i] = append(walls[i], m.wall.Seconds())
			cpus[i] = append(cpus[i], m.cpu.Seconds())
			rss[i] = max(rss[i], m.maxRSS)
			anon[i], file[i] = max(anon[i], m.anon), max(file[i], m.file)
		}
	}
	fmt.Printf("\n%s (%d alternating runs, medians; load average %s before, %s after):\n", title, n, load, loadavg())
	for i, c := range cmds {
		if cmds[i].short {
			fmt.Printf("  %-40s wall %7.1fms  cpu %7.1fms  peak RSS %4d MB\n", c.name, 1000*median(walls[i]), 1000*median(cpus[i]), rss[i]/1024)
			continue
		}
		fmt.Printf("  %-40s wall %8.3fs  cpu %8.3fs  peak RSS %4d MB (anon %d MB, file %d MB)\n", c.name, median(walls[i]), median(cpus[i]), rss[i]/1024, anon[i]/1024, file[i]/1024)
	}
	for i := 1; i < len(cmds); i++ {
		fmt.Printf("  %s ÷ %s: wall %.2f, cpu %.2f\n", cmds[0].name, cmds[i].name, median(walls[0])/median(walls[i]), median(cpus[0])/median(cpus[i]))
	}
	return nil
}

// copyFile copies an executable, replacing dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	_ = os.Remove(dst)
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// loadavg is the machine's 1-minute and 5-minute load average.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return "?"
	}
	return f[0] + "/" + f[1]
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// buildRepo builds the benchmark repository, or reuses one built before
// with the same options (it is deterministic), and returns its manifest and
// the managed values planted in it.
func buildRepo(ctx context.Context, o opts, dir string) (benchrepo.Manifest, [][]byte, error) {
	extras := managedValues(o.seed)
	manifestFile := dir + ".json"
	if b, err := os.ReadFile(manifestFile); err == nil {
		var m benchrepo.Manifest
		if json.Unmarshal(b, &m) == nil && m.Head != "" {
			fmt.Printf("reusing %s\n", dir)
			return m, extras, nil
		}
	}
	_ = os.RemoveAll(dir)
	sources, err := benchrepo.SourceDirs(ctx, ".")
	if err != nil {
		return benchrepo.Manifest{}, nil, err
	}
	start := time.Now()
	m, err := benchrepo.Build(ctx, dir, benchrepo.Options{Commits: o.commits, Seed: o.seed, Sources: sources, Extra: extras})
	if err != nil {
		return benchrepo.Manifest{}, nil, err
	}
	fmt.Printf("built %s in %s\n", dir, time.Since(start).Round(time.Second))
	b, err := json.Marshal(m)
	if err != nil {
		return benchrepo.Manifest{}, nil, err
	}
	return m, extras, os.WriteFile(manifestFile, b, 0o644)
}

// managedValues are the "managed secrets" planted in the repository:
// random passwords no gitleaks rule matches, derived from the seed so the
// repository is reproducible.
func managedValues(seed uint64) [][]byte {
	var out [][]byte
	for i := range 5 {
		h := sha256.Sum256(fmt.Appendf(nil, "passman-bench-managed-%d-%d", seed, i))
		out = append(out, []byte(hex.EncodeToString(h[:])[:12]+"Xq"+hex.EncodeToString(h[20:])[:10]))
	}
	return out
}

// writeIndex writes a fingerprint index of size entries: the planted
// values and random others, under a fresh detection key.
func writeIndex(path string, planted [][]byte, size int) error {
	seed := make([]byte, keyring.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return err
	}
	key, err := keyring.NewDetectionKey(seed)
	if err != nil {
		return err
	}
	// The local form, which confirms its own candidates: the benchmark
	// scans offline, without a store.
	b := fpindex.NewBuilder("bench", "", key, time.Now(), true)
	add := func(i int, v []byte) {
		b.Add(v, key.Fingerprint(v), secret.FingerprintMatch{Path: fmt.Sprintf("bench/secret-%06d", i), Version: 1,
			Stages: []secret.Stage{secret.StageCurrent}, State: secret.StateActive})
	}
	for i, v := range planted {
		add(i, v)
	}
	for i := len(planted); i < size; i++ {
		n, err := rand.Int(rand.Reader, big.NewInt(40))
		if err != nil {
			return err
		}
		v := make([]byte, 16+n.Int64())
		if _, err := rand.Read(v); err != nil {
			return err
		}
		add(i, []byte(hex.EncodeToString(v)[:len(v)]))
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fpindex.Write(out, b.File()); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// measure runs a command, its standard output to stdout ("" discards it),
// and returns its wall time, CPU time and peak RSS. Exit status 1 (leaks
// found) is success here.
func measure(ctx context.Context, name, stdout string, args ...string) (measurement, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var errBuf strings.Builder
	cmd.Stderr = &errBuf
	if stdout != "" {
		f, err := os.Create(stdout)
		if err != nil {
			return measurement{}, err
		}
		defer f.Close()
		cmd.Stdout = f
	}
	if cmd.Stdin == nil {
		cmd.Stdin = strings.NewReader("")
	}
	fmt.Fprintf(os.Stderr, "running: %s\n", name)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return measurement{}, fmt.Errorf("%s: %w", name, err)
	}
	// The process's own peak (VmHWM), polled: rusage's ru_maxrss would
	// also count git's children and, before exec, this process's image.
	var peak, anon, file int64
	done := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		for {
			if b, err := os.ReadFile(status); err == nil {
				for line := range strings.Lines(string(b)) {
					k, v, _ := strings.Cut(line, ":")
					kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
					if err != nil {
						continue
					}
					switch k {
					case "VmHWM":
						peak = max(peak, kb)
					case "RssAnon":
						anon = max(anon, kb)
					case "RssFile":
						file = max(file, kb)
					}
				}
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	wall := time.Since(start)
	close(done)
	<-polled
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		return measurement{}, fmt.Errorf("%s: %w: %s", name, err, errBuf.String())
	}
	return measurement{
		name:   name,
		wall:   wall,
		cpu:    cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(),
		maxRSS: peak,
		anon:   anon,
		file:   file,
	}, nil
}

// measureShort runs a command with empty standard input and its output
// discarded, and returns its wall and CPU time and the kernel's peak RSS.
func measureShort(ctx context.Context, name, _ string, args ...string) (measurement, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	null, err := os.Open(os.DevNull)
	if err != nil {
		return measurement{}, err
	}
	defer null.Close()
	cmd.Stdin = null
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		return measurement{}, fmt.Errorf("%s: %w", name, err)
	}
	m := measurement{name: name, wall: wall, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.maxRSS = ru.Maxrss // KiB on Linux
	}
	return m, nil
}

// parity checks that passman reports every secret gitleaks reports, and
// every planted secret at the commit that planted it.
func parity(glReport, pmReport, managedReport string, m benchrepo.Manifest) error {
	var gl []struct{ RuleID, File, Secret, Commit string }
	var pm, pmManaged []struct{ RuleID, File, Fingerprint, Commit string }
	for _, x := range []struct {
		file string
		v    any
	}{{glReport, &gl}, {pmReport, &pm}, {managedReport, &pmManaged}} {
		if x.file == "" {
			continue
		}
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
	type key struct{ rule, file string }
	missing := map[key]int{}
	glKeys := map[string]bool{}
	for _, f := range gl {
		fp := scanner.ContentFingerprint(f.RuleID, f.File, []byte(f.Secret))
		glKeys[fp] = true
		if !ours[fp] {
			missing[key{f.RuleID, f.File}]++
		}
	}
	extra := 0
	for fp := range ours {
		if !glKeys[fp] {
			extra++
		}
	}
	fmt.Printf("parity: gitleaks %d findings (%d distinct secrets per file), passman %d; missed by passman: %d; passman only: %d\n",
		len(gl), len(glKeys), len(pm), len(missing), extra)
	keys := make([]key, 0, len(missing))
	for k := range missing {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return strings.Compare(a.rule+a.file, b.rule+b.file) })
	for _, k := range keys {
		fmt.Printf("  missed: %s in %s (%d)\n", k.rule, k.file, missing[k])
	}
	planted := 0
	for _, p := range m.Planted {
		list := pm
		if p.Rule == benchrepo.RuleManaged {
			list = pmManaged
		}
		found := slices.ContainsFunc(list, func(f struct{ RuleID, File, Fingerprint, Commit string }) bool {
			return f.RuleID == p.Rule && f.File == p.File && f.Commit == p.Commit
		})
		if found {
			planted++
		} else {
			fmt.Printf("  planted secret not reported: %s %s in %s at %s\n", p.Kind, p.Rule, p.File, p.Commit)
		}
	}
	fmt.Printf("planted secrets reported at their commit: %d of %d\n", planted, len(m.Planted))
	if len(missing) > 0 || planted != len(m.Planted) {
		return errors.New("parity check failed")
	}
	return nil
}
