package scanner

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zricethezav/gitleaks/v8/detect"

	"github.com/passman-dev/passman/secret"
)

// GitOptions select the history ScanGit reads.
type GitOptions struct {
	// Range is "BASE..HEAD", a pull request's commits: every commit
	// reachable from HEAD and not from BASE, merges included. Only what the
	// range adds is reported: a secret that was already in a file at the
	// merge base is not new, even where the range rewrites its line.
	// "" scans the whole history of every ref.
	Range string
	// Cache remembers each commit's findings between scans; nil scans
	// everything. See OpenCache.
	Cache *Cache
	// Progress, when set, is called as commits finish (from one goroutine).
	Progress func(done, total int)
}

// ScanGit scans the additions of every commit of the repository at repo
// (the whole history, or GitOptions.Range). Each leaked secret is one
// finding, attributed to the commit that first added it to its file;
// commits are scanned in parallel, and a run of lines already scanned in
// the same file (a cherry-pick, a revert, a re-vendored file) is not
// scanned again.
func (s *Scanner) ScanGit(ctx context.Context, repo string, opts GitOptions) ([]Finding, Stats, error) {
	var st Stats
	var a, b string
	var ask []string
	if opts.Range != "" {
		var err error
		if a, b, err = splitRange(opts.Range); err != nil {
			return nil, st, err
		}
		ask = rangeRevs(a, b)
	}
	if opts.Range != "" {
		go s.rules.prewarm()
	}
	g, ids, err := openRepoResolving(ctx, repo, ask...)
	if err != nil {
		return nil, st, err
	}
	st.Shallow = g.shallow
	revs := []string{"--all"}
	var from, to string
	if opts.Range != "" {
		if len(ids) == 2 {
			from, to = ids[0], ids[1]
		} else if from, to, err = g.resolveRange(ctx, opts.Range, a, b); err != nil {
			return nil, st, err
		}
		revs = []string{to, "^" + from}
	}
	var ls listing
	// list fills ls. A range's merge bases are found beside the rev-list
	// when the scan waits for both; when it does not (early, below), the
	// rev-list's boundary is asked first: a pull request based on its
	// base's tip has that base as its merge base, and no merge-base
	// process to run.
	list := func(early bool) {
		var baseErr error
		baseDone := make(chan struct{})
		if opts.Range != "" && !early {
			go func() {
				defer close(baseDone)
				ls.base, baseErr = g.mergeBases(ctx, from, to)
			}()
		} else {
			close(baseDone)
		}
		var boundary map[string]bool
		ls.order, ls.merges, boundary, ls.err = g.revList(ctx, revs, opts.Range != "")
		<-baseDone
		if ls.err == nil && opts.Range != "" && early {
			if boundary[from] {
				ls.base = []string{from}
			} else {
				ls.base, baseErr = g.mergeBases(ctx, from, to)
			}
		}
		if ls.err == nil {
			ls.err = baseErr
		}
		ls.seq = make(map[string]int, len(ls.order))
		for i, c := range ls.order {
			ls.seq[c] = i
		}
	}
	if s.show {
		opts.Cache = nil // the cache must never hold secret text
	}
	// A range scanned without the cache starts git log at once, beside
	// the rev-list that orders its commits: a pull request's diffs wait
	// for one git process (rev-parse), not two.
	early := opts.Range != "" && opts.Cache == nil
	listed := make(chan struct{})
	if early {
		go func() {
			defer close(listed)
			list(true)
		}()
	} else {
		list(false)
		close(listed)
		if ls.err != nil {
			return nil, st, ls.err
		}
	}
	results := map[string]*commitResult{}
	var todo []string
	if opts.Cache != nil {
		cached, err := opts.Cache.load(s.rulesHash, ls.order)
		if err != nil {
			return nil, st, err
		}
		for sha, r := range cached {
			if !g.boundary[sha] {
				results[sha] = r
			}
		}
	}
	done := 0
	progress := func() {
		if opts.Progress != nil {
			opts.Progress(done, len(ls.order))
		}
	}
	var runs []logRun
	if early {
		runs = rangeRuns(from, to)
	} else {
		for _, c := range ls.order {
			if _, ok := results[c]; !ok {
				todo = append(todo, c)
			}
		}
		st.CachedCommits = len(ls.order) - len(todo)
		done = st.CachedCommits
		progress()
		if len(todo) > 0 {
			runs = listRuns(todo, ls.merges)
		}
	}
	var pre *blobPrefetch
	if opts.Range != "" {
		pre = newBlobPrefetch(ctx, g, s.maxSize)
		defer pre.wait() // on every return: git must not outlive the scan
	}
	if len(runs) > 0 {
		first := early // the total is known now
		err := s.scanCommits(ctx, g, runs, opts.Range != "", func(r *commitResult) error {
			<-listed
			if ls.err != nil {
				return ls.err
			}
			if first {
				progress()
				first = false
			}
			if _, ok := ls.seq[r.SHA]; !ok {
				return fmt.Errorf("git log: unexpected commit %s", r.SHA)
			}
			if _, again := results[r.SHA]; !again {
				done++
			}
			results[r.SHA] = r
			progress()
			for _, f := range r.Findings {
				for _, b := range ls.base {
					pre.add(b + ":" + f.File)
				}
			}
			return nil
		})
		<-listed
		if err == nil {
			err = ls.err
		}
		if err != nil {
			return nil, st, err
		}
		if opts.Cache != nil {
			fresh := make(map[string]*commitResult, len(todo))
			for _, c := range todo {
				if r, ok := results[c]; ok && !g.boundary[c] {
					fresh[c] = r
				}
			}
			if err := opts.Cache.store(s.rulesHash, fresh); err != nil {
				return nil, st, err
			}
		}
	}
	order, seq, base := ls.order, ls.seq, ls.base
	var all []Finding
	for _, c := range order {
		r, ok := results[c]
		if !ok {
			return nil, st, fmt.Errorf("git log: commit %s was not scanned", c)
		}
		st.add(r.Stats)
		all = append(all, r.Findings...)
	}
	st.Commits = len(order)
	out := firstIntroduced(all, seq)
	if opts.Range != "" {
		if out, err = s.dropPresentIn(ctx, g, base, out, pre); err != nil {
			return nil, st, err
		}
	}
	return out, st, nil
}

// ScanStaged scans what the index adds to HEAD (a pre-commit hook's view).
// A secret already in the file at HEAD is not reported.
func (s *Scanner) ScanStaged(ctx context.Context, repo string) ([]Finding, Stats, error) {
	var st Stats
	go s.rules.prewarm()
	g, err := openRepo(ctx, repo)
	if err != nil {
		return nil, st, err
	}
	args := append([]string{"diff", "--cached"}, diffArgs()...)
	var res *commitResult
	err = s.scanLogs(ctx, g, []logRun{{args: args}}, true, func(r *commitResult) error {
		res = r
		return nil
	})
	if err != nil {
		return nil, st, err
	}
	if res == nil {
		return nil, st, nil
	}
	st.add(res.Stats)
	out := finish(res.Findings)
	if len(out) == 0 { // the common case: no more git to run
		return out, st, nil
	}
	var base []string
	if _, err := g.run(ctx, nil, "rev-parse", "--verify", "--quiet", "HEAD^{commit}"); err == nil {
		base = []string{"HEAD"}
	}
	out, err = s.dropPresentIn(ctx, g, base, out, nil)
	return out, st, err
}

// scanCommits scans the commits whose diffs runs print (listRuns,
// rangeRuns), calling emit for each from one goroutine (a commit may be
// emitted twice, the later result replacing the earlier).
//
// What a commit adds is what `git log -p --cc -M` shows, but that is
// computed in parts, in parallel: the merges' combined diffs in a git
// process of their own beside the other commits' (split in two on a long
// history, so that git uses both cores), and all without rename detection,
// which on a history with many merges costs git more than the diffs. A
// rename only matters where it hides a finding: a renamed file is new to
// a diff without it, so its whole content is scanned. So the commits where
// it could change the result — a finding in a file the commit adds while
// it deletes another, and any finding at a merge — are scanned again with
// rename detection, and that result is the commit's.
func (s *Scanner) scanCommits(ctx context.Context, g *gitRepo, runs []logRun, small bool, emit func(*commitResult) error) error {
	var again []string
	collect := func(r *commitResult) error {
		if r.suspect {
			again = append(again, r.SHA)
		}
		return emit(r)
	}
	if err := s.scanLogs(ctx, g, runs, small, collect); err != nil {
		return err
	}
	if len(again) == 0 {
		return nil
	}
	args := append(logArgs(), "--no-walk=unsorted", "--stdin")
	return s.scanLogs(ctx, g, []logRun{{args, strings.Join(again, "\n") + "\n"}}, true, emit)
}

// listRuns are the git log commands that print todo's diffs (see
// scanCommits).
func listRuns(todo []string, merges map[string]bool) []logRun {
	var plain, merged []string
	for _, c := range todo {
		if merges[c] {
			merged = append(merged, c)
		} else {
			plain = append(plain, c)
		}
	}
	// An empty list would have git log read HEAD instead.
	var streams [][]string
	if len(plain) >= splitHistory {
		h := len(plain) / 2
		streams = [][]string{plain[:h], plain[h:]}
	} else if len(plain) > 0 {
		streams = [][]string{plain}
	}
	if len(merged) > 0 {
		streams = append(streams, merged)
	}
	runs := make([]logRun, len(streams))
	for i, list := range streams {
		runs[i] = logRun{append(quickLogArgs(), "--no-walk=unsorted", "--stdin"), strings.Join(list, "\n") + "\n"}
	}
	return runs
}

// rangeRuns are the git log commands that print the diffs of the commits
// of to that from lacks (both commit ids): merges apart, as listRuns.
func rangeRuns(from, to string) []logRun {
	return []logRun{
		{args: append(quickLogArgs(), "--no-merges", to, "^"+from)},
		{args: append(quickLogArgs(), "--merges", to, "^"+from)},
	}
}

// listing is what ScanGit learns from git rev-list and merge-base.
type listing struct {
	order  []string // parents before children
	seq    map[string]int
	merges map[string]bool
	base   []string // the range's merge bases
	err    error
}

// splitHistory is how many non-merge commits make two git processes worth
// their start.
const splitHistory = 2000

// commitResult is one commit's findings (before attribution across
// commits), as cached.
type commitResult struct {
	SHA      string    `json:"sha"`
	Findings []Finding `json:"findings"`
	Stats    Stats     `json:"stats"`
	// err is why the commit could not be scanned (a managed candidate
	// could not be confirmed); such a result is never cached.
	err error
	// suspect is set when rename detection could change the result (see
	// scanCommits).
	suspect bool
}

// logRun is one git command whose diff output scanLogs reads.
type logRun struct {
	args  []string
	stdin string
}

// scanLogs runs the git commands in parallel, parses their diffs and scans
// every commit's additions with one pool of workers (one per core), calling
// emit for each commit from one goroutine. Without small every rule is
// compiled while git starts. With small (a pull request, the index) each
// commit is scanned with the rules its content could reach, compiled as
// commits arrive (see rulePicker): the rules, and the scan, overlap git's
// output instead of waiting for its end; past smallScan bytes every rule
// is.
func (s *Scanner) scanLogs(parent context.Context, g *gitRepo, runs []logRun, small bool, emit func(*commitResult) error) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	type proc struct {
		cmd    *exec.Cmd
		out    io.Reader
		stderr boundedBuffer
		args   []string
	}
	procs := make([]*proc, len(runs))
	for i, r := range runs {
		p := &proc{cmd: g.command(ctx, r.args...), args: r.args}
		if r.stdin != "" {
			p.cmd.Stdin = strings.NewReader(r.stdin)
		}
		p.cmd.Stderr = &p.stderr
		out, err := p.cmd.StdoutPipe()
		if err != nil {
			return fmt.Errorf("git: %w", err)
		}
		p.out = out
		if err := p.cmd.Start(); err != nil {
			cancel()
			for _, q := range procs[:i] {
				_ = q.cmd.Wait()
			}
			return fmt.Errorf("run git: %w", err)
		}
		procs[i] = p
	}

	// all compiles every rule, once. The workers share its Detector (and
	// the picker's): DetectContext only reads it (gitleaks itself
	// calls it from many goroutines), and a Detector's keyword trie over
	// all rules holds ~2.5 MB.
	all := sync.OnceValues(func() (*detect.Detector, error) {
		cfg, err := s.rules.all()
		if err != nil {
			return nil, err
		}
		return s.detector(ctx, cfg), nil
	})
	detectorsFor := func(*commitDiff) (commitDetectors, error) {
		det, err := all()
		return commitDetectors{det: det}, err
	}
	if small {
		picker, err := s.newRulePicker(ctx, all)
		if err != nil {
			cancel()
			for _, p := range procs {
				_ = p.cmd.Wait()
			}
			return err
		}
		if picker != nil {
			detectorsFor = picker.detectors
		} else {
			small = false
		}
	}
	if !small {
		go func() { _, _ = all() }() // while git starts
	}

	workers := runtime.GOMAXPROCS(0)
	commits := make(chan *commitDiff, workers)
	results := make(chan *commitResult, workers)
	cache := newContentCache(s.commitAllowlists)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range commits {
				dets, err := detectorsFor(c)
				r := &commitResult{err: err}
				if err == nil {
					r = s.scanCommit(ctx, dets, cache, c)
				}
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	parseErrs := make(chan error, len(procs))
	var running atomic.Int32
	running.Store(int32(len(procs)))
	for _, p := range procs {
		go func() {
			err := newLogParser(p.out, int(s.maxSize)).parse(func(c *commitDiff) error {
				select {
				case commits <- c:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
			if err != nil {
				cancel()
			}
			_, _ = io.Copy(io.Discard, p.out)
			if running.Add(-1) == 0 {
				close(commits)
			}
			parseErrs <- err
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	var emitErr error
	for r := range results {
		if emitErr == nil {
			if emitErr = r.err; emitErr == nil {
				emitErr = emit(r)
			}
			if emitErr != nil {
				cancel()
			}
		}
	}
	var perr, werr error
	var failedArgs []string
	var failedStderr string
	for range procs {
		if err := <-parseErrs; err != nil && perr == nil {
			perr = err
		}
	}
	for _, p := range procs {
		if err := p.cmd.Wait(); err != nil && werr == nil {
			werr, failedArgs, failedStderr = err, p.args, p.stderr.String()
		}
	}
	switch {
	case parent.Err() != nil:
		return parent.Err()
	case emitErr != nil:
		return emitErr
	case perr != nil:
		return perr
	case werr != nil:
		return fmt.Errorf("git %s: %w: %s", failedArgs[0], werr, failedStderr)
	}
	return nil
}

// scanCommit scans one commit's additions.
func (s *Scanner) scanCommit(ctx context.Context, dets commitDetectors, cache *contentCache, c *commitDiff) *commitResult {
	r := &commitResult{SHA: c.SHA}
	r.Stats.SkippedBinary = c.Binary
	r.Stats.SkippedLarge = c.Large
	for i, a := range c.Adds {
		r.Stats.Files++
		r.Stats.Bytes += int64(len(a.Raw))
		key, usable := cache.key(a.Path, a.Raw)
		rel, ok := cache.get(key)
		if !ok || !usable {
			var err error
			if rel, err = s.scanFragment(ctx, dets.forAdd(i), a.Path, a.Raw, 1, c.SHA); err != nil {
				r.err = err
				return r
			}
			if usable && ctx.Err() == nil {
				cache.put(key, rel)
			}
		}
		if len(rel) > 0 && (c.Parents > 1 || a.New && c.Deletes) {
			r.suspect = true
		}
		for _, f := range rel {
			if f.StartLine > 0 { // path-only findings have no position
				f.StartLine += a.StartLine - 1
				f.EndLine += a.StartLine - 1
			}
			f.Commit, f.Author, f.Email, f.Date = c.SHA, c.Author, c.Email, c.Date
			r.Findings = append(r.Findings, f)
		}
	}
	return r
}

// contentCache remembers the findings of runs of added lines by file path
// and content, within one scan: the same lines added to the same file again
// yield the same findings, attributed to the earlier commit anyway. Commit
// allowlists make a result depend on the commit, so with any the cache is
// off.
type contentCache struct {
	mu  sync.Mutex
	m   map[[32]byte][]Finding
	off bool
}

func newContentCache(off bool) *contentCache {
	return &contentCache{m: map[[32]byte][]Finding{}, off: off}
}

// minCachedRun is the smallest run of added lines worth remembering: the
// repeats that matter (cherry-picks, reverts, re-vendored files) are large,
// and a map entry per one-line edit costs more memory than rescanning it.
const minCachedRun = 1024

func (c *contentCache) key(path string, raw []byte) ([32]byte, bool) {
	if c.off || len(raw) < minCachedRun {
		return [32]byte{}, false
	}
	h := sha256.New()
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(raw)
	var k [32]byte
	h.Sum(k[:0])
	return k, true
}

func (c *contentCache) get(k [32]byte) ([]Finding, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.m[k]
	return f, ok
}

func (c *contentCache) put(k [32]byte, f []Finding) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = f
}

// firstIntroduced keeps, of the findings of one secret in one file (same
// content fingerprint), the one from the earliest commit in seq (topological
// order, parents first), and sorts the result.
func firstIntroduced(all []Finding, seq map[string]int) []Finding {
	slices.SortStableFunc(all, func(a, b Finding) int {
		if c := strings.Compare(a.Fingerprint, b.Fingerprint); c != 0 {
			return c
		}
		if c := seq[a.Commit] - seq[b.Commit]; c != 0 {
			return c
		}
		return compareKey(a, b)
	})
	all = slices.CompactFunc(all, func(a, b Finding) bool { return a.Fingerprint == b.Fingerprint })
	slices.SortFunc(all, func(a, b Finding) int {
		if c := seq[a.Commit] - seq[b.Commit]; c != 0 {
			return c
		}
		return compareKey(a, b)
	})
	return all
}

// dropPresentIn removes findings whose secret was already in the same file
// at any of the base commits: a range or the index did not add it.
// pre, when not nil, holds blobs read beforehand and the specs it was
// asked for.
func (s *Scanner) dropPresentIn(ctx context.Context, g *gitRepo, bases []string, fs []Finding, pre *blobPrefetch) ([]Finding, error) {
	if len(bases) == 0 || len(fs) == 0 {
		return fs, nil
	}
	present := map[string]bool{}
	seen := map[string]bool{}
	// Only the rules that found something can find the same secrets in
	// the base: a base file is scanned with those alone.
	ids := map[string]bool{}
	for _, f := range fs {
		ids[f.RuleID] = true
	}
	cfg, err := s.rules.forRules(ids)
	if err != nil {
		return nil, err
	}
	det := s.detector(ctx, cfg)
	var specs []string
	for _, f := range fs {
		if !seen[f.File] {
			seen[f.File] = true
			for _, b := range bases {
				specs = append(specs, b+":"+f.File)
			}
		}
	}
	blobs := map[string][]byte{}
	rest := specs
	if pre != nil {
		if got, asked, err := pre.wait(); err == nil { // else read them all here
			blobs, rest = got, nil
			for _, spec := range specs {
				if !asked[spec] {
					rest = append(rest, spec)
				}
			}
		}
	}
	more, err := g.blobs(ctx, rest, s.maxSize)
	if err != nil {
		return nil, err
	}
	maps.Copy(blobs, more)
	// The files are scanned on all cores: this is the last step of a
	// pull request's scan, with nothing else left to run beside it.
	var (
		mu      sync.Mutex
		scanErr error
		next    atomic.Int32
		wg      sync.WaitGroup
	)
	for range min(runtime.GOMAXPROCS(0), len(specs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(specs); i = int(next.Add(1)) - 1 {
				content, ok := blobs[specs[i]]
				if !ok || bytes.IndexByte(content[:min(len(content), binarySniffLen)], 0) >= 0 {
					continue // new in the range, too large or binary
				}
				_, file, _ := strings.Cut(specs[i], ":") // a base is a commit id: no colon
				olds, err := s.scanFragment(ctx, det, file, content, 1, "")
				mu.Lock()
				if err != nil && scanErr == nil {
					scanErr = err
				}
				for _, old := range olds {
					present[old.Fingerprint] = true
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if scanErr != nil {
		return nil, scanErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(fs, func(f Finding) bool { return present[f.Fingerprint] }), nil
}

// blobs reads the blobs named by specs ("commit:path") through one git
// cat-file --batch process instead of a process per file: a pull request
// whose findings touch several files pays for one. A spec that names no
// blob (a file new in the range) or a blob over limit bytes is absent from
// the result. A path with a newline cannot be written to the batch and is
// read with a process of its own.
func (g *gitRepo) blobs(ctx context.Context, specs []string, limit int64) (map[string][]byte, error) {
	res := make(map[string][]byte, len(specs))
	var batch []string
	for _, spec := range specs {
		if !strings.ContainsAny(spec, "\n\r") {
			batch = append(batch, spec)
			continue
		}
		if content, err := g.run(ctx, nil, "cat-file", "blob", spec); err == nil && int64(len(content)) <= limit {
			res[spec] = content
		}
	}
	if len(batch) == 0 {
		return res, nil
	}
	cmd := g.command(ctx, "cat-file", "--batch")
	cmd.Stdin = strings.NewReader(strings.Join(batch, "\n") + "\n")
	var stderr boundedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("git cat-file: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("git cat-file: %w", err)
	}
	readErr := readBatch(bufio.NewReader(out), batch, limit, res)
	if readErr != nil {
		_, _ = io.Copy(io.Discard, out) // let git finish writing, then reap it
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("git cat-file: %w: %s", err, stderr.String())
	}
	return res, readErr
}

// readBatch reads git cat-file --batch's answers to specs, in their order:
// "<oid> <type> <size>\n<content>\n", or "<spec> missing\n" (or
// "ambiguous") for a spec that names nothing.
func readBatch(r *bufio.Reader, specs []string, limit int64, res map[string][]byte) error {
	for _, spec := range specs {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("git cat-file: reading the answer for %q: %w", spec, err)
		}
		line = strings.TrimSuffix(line, "\n")
		if strings.HasSuffix(line, " missing") || strings.HasSuffix(line, " ambiguous") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return fmt.Errorf("git cat-file: unexpected answer %q for %q", line, spec)
		}
		size, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("git cat-file: unexpected size in %q", line)
		}
		if f[1] != "blob" || size > limit {
			if _, err := r.Discard(int(size) + 1); err != nil {
				return fmt.Errorf("git cat-file: %w", err)
			}
			continue
		}
		b := make([]byte, size+1)
		if _, err := io.ReadFull(r, b); err != nil {
			return fmt.Errorf("git cat-file: %w", err)
		}
		res[spec] = b[:size]
	}
	return nil
}

// gitRepo runs git in one repository, isolated from settings that would
// change the diff it prints.
type gitRepo struct {
	dir     string
	shallow bool
	// boundary holds a shallow clone's boundary commits: there they have
	// no parents, so their diff is their whole tree, unlike the same
	// commit's in a full clone; they are never cached.
	boundary map[string]bool
}

func openRepo(ctx context.Context, dir string) (*gitRepo, error) {
	g, _, err := openRepoResolving(ctx, dir)
	return g, err
}

// openRepoResolving opens the repository at dir and resolves revs (each
// "REV^{commit}", none starting with "-") to commit ids in the same git
// process: a pull request's scan pays for one process where it paid for
// three. ids is nil when they do not all resolve; the caller resolves them
// one by one then, for an error that names the culprit.
func openRepoResolving(ctx context.Context, dir string, revs ...string) (g *gitRepo, ids []string, err error) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, nil, fmt.Errorf("scan git: git is not installed: %w", err)
	}
	g = &gitRepo{dir: dir}
	if fi, err := os.Stat(dir); err != nil {
		return nil, nil, fmt.Errorf("scan git: %w", err)
	} else if !fi.IsDir() {
		return nil, nil, fmt.Errorf("%w: scan git: %s is not a directory", secret.ErrInvalidArgument, dir)
	}
	// Nothing here asks for a path: a repository whose path holds a line
	// break would break the one-line-per-answer reading. Outside a
	// repository --is-shallow-repository fails.
	ask := []string{"rev-parse", "--is-shallow-repository"}
	var info revParseInfo
	ok := false
	if len(revs) > 0 {
		if out, err := g.run(ctx, nil, append(ask, revs...)...); err == nil {
			info, ok = parseRevParse(out, len(revs))
		}
	}
	if !ok {
		out, err := g.run(ctx, nil, ask...)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			return nil, nil, fmt.Errorf("%w: scan git: %s is not a git repository", secret.ErrInvalidArgument, dir)
		}
		if info, ok = parseRevParse(out, 0); !ok {
			return nil, nil, fmt.Errorf("scan git: unexpected git rev-parse output for %s", dir)
		}
	}
	g.shallow = info.shallow
	if g.shallow {
		// One answer alone, so a line break in the path is the path's.
		out, err := g.run(ctx, nil, "rev-parse", "--git-path", "shallow")
		if err != nil {
			return nil, nil, fmt.Errorf("scan git: shallow clone: %w", err)
		}
		p, found := strings.CutSuffix(string(out), "\n")
		if !found || p == "" {
			return nil, nil, fmt.Errorf("scan git: unexpected git rev-parse output for %s", dir)
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("scan git: shallow clone: %w", err)
		}
		g.boundary = map[string]bool{}
		for _, sha := range strings.Fields(string(b)) {
			g.boundary[sha] = true
		}
	}
	return g, info.ids, nil
}

// revParseInfo is what openRepoResolving asks git rev-parse.
type revParseInfo struct {
	shallow bool
	ids     []string // nil without revisions
}

// parseRevParse reads the answer of `git rev-parse --is-shallow-repository`
// followed by n revisions: one line each. Anything else (a revision that
// names no single commit) is not ok.
func parseRevParse(out []byte, n int) (revParseInfo, bool) {
	var info revParseInfo
	text, found := strings.CutSuffix(string(out), "\n")
	if !found {
		return info, false
	}
	lines := strings.Split(text, "\n")
	if len(lines) != 1+n {
		return info, false
	}
	switch lines[0] {
	case "true":
		info.shallow = true
	case "false":
	default:
		return info, false
	}
	for _, id := range lines[1:] {
		if !isCommitID(id) {
			return revParseInfo{}, false
		}
		info.ids = append(info.ids, id)
	}
	return info, true
}

// configArgs pin the settings a user's git config could use to change the
// output parseLog reads.
var configArgs = []string{
	"-c", "core.quotePath=true",
	"-c", "diff.noprefix=false",
	"-c", "diff.mnemonicPrefix=false",
	"-c", "diff.relative=false",
	"-c", "log.showRoot=true",
	"-c", "log.showSignature=false",
	"-c", "color.ui=never",
	"-c", "diff.suppressBlankEmpty=false",
	"-c", "diff.interHunkContext=0",
}

// diffArgs are the options every diff command takes; logArgs add git log's.
func diffArgs() []string {
	// --text: git's own binary test honours .gitattributes, and a pull
	// request that marks *.env "-diff" must not hide a secret; binary
	// content is recognised by the parser instead (a NUL byte).
	return []string{"-U0", "-M", "--text", "--no-color", "--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/"}
}

func logArgs() []string {
	return append([]string{"log", "-p", "--cc", logFormat}, diffArgs()...)
}

// quickLogArgs are logArgs without rename detection (see scanCommits).
func quickLogArgs() []string {
	args := logArgs()
	return append(slices.DeleteFunc(args, func(a string) bool { return a == "-M" }), "--no-renames")
}

func (g *gitRepo) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append(append([]string{"-C", g.dir}, configArgs...), args...)
	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Env = append(gitEnv(os.Environ()), "GIT_PAGER=cat", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	return cmd
}

// gitEnv keeps of environ what git needs: where programs and its
// configuration are, and git's own variables (a hook sets GIT_DIR and
// GIT_INDEX_FILE, which a pre-commit scan must see). The rest of
// passman's environment, PASSMAN_MASTER_KEY and PASSMAN_TOKEN included,
// is not git's business.
func gitEnv(environ []string) []string {
	out := make([]string, 0, 8)
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "PATH", k == "HOME", k == "TMPDIR", k == "XDG_CONFIG_HOME", strings.HasPrefix(k, "GIT_"):
			out = append(out, kv)
		}
	}
	return out
}

// run runs a short git command and returns its standard output.
func (g *gitRepo) run(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := g.command(ctx, args...)
	cmd.Stdin = stdin
	var stderr boundedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, stderr.String())
	}
	return out, nil
}

// splitRange splits "BASE..HEAD".
func splitRange(r string) (a, b string, err error) {
	if strings.Contains(r, "...") {
		return "", "", fmt.Errorf("%w: range %q: use BASE..HEAD (three-dot ranges are not supported)", secret.ErrInvalidArgument, r)
	}
	a, b, ok := strings.Cut(r, "..")
	if !ok || a == "" || b == "" {
		return "", "", fmt.Errorf("%w: range %q: want BASE..HEAD", secret.ErrInvalidArgument, r)
	}
	return a, b, nil
}

// rangeRevs are the revisions openRepoResolving resolves for BASE and
// HEAD, or none when one could be read as an option.
func rangeRevs(a, b string) []string {
	if strings.HasPrefix(a, "-") || strings.HasPrefix(b, "-") || strings.ContainsAny(a+b, "\x00\n") {
		return nil
	}
	return []string{a + "^{commit}", b + "^{commit}"}
}

// resolveRange resolves BASE and HEAD of r one by one: an error names the
// one that does not resolve to a commit.
func (g *gitRepo) resolveRange(ctx context.Context, r, a, b string) (from, to string, err error) {
	resolve := func(rev string) (string, error) {
		if strings.HasPrefix(rev, "-") || strings.ContainsAny(rev, "\x00\n") {
			return "", fmt.Errorf("%w: range %q: bad revision %q", secret.ErrInvalidArgument, r, rev)
		}
		out, err := g.run(ctx, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			hint := ""
			if g.shallow {
				hint = " (shallow clone: fetch the base, e.g. with fetch-depth: 0)"
			}
			return "", fmt.Errorf("%w: range %q: unknown revision %q%s", secret.ErrInvalidArgument, r, rev, hint)
		}
		return strings.TrimSpace(string(out)), nil
	}
	if from, err = resolve(a); err != nil {
		return "", "", err
	}
	if to, err = resolve(b); err != nil {
		return "", "", err
	}
	return from, to, nil
}

// isCommitID reports whether s is a full object id (SHA-1 or SHA-256), as
// rev-parse prints one: not a "^id" exclusion a range would print.
func isCommitID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (g *gitRepo) mergeBases(ctx context.Context, a, b string) ([]string, error) {
	out, err := g.run(ctx, nil, "merge-base", "--all", a, b)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			return nil, nil // unrelated histories: nothing was there before
		}
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// revList returns the commits of revs, parents before children, and the
// merges among them; with boundary, also the commits just outside the
// range that its commits have as parents.
func (g *gitRepo) revList(ctx context.Context, revs []string, boundary bool) ([]string, map[string]bool, map[string]bool, error) {
	args := []string{"rev-list", "--topo-order", "--reverse", "--parents"}
	if boundary {
		args = append(args, "--boundary")
	}
	out, err := g.run(ctx, nil, append(args, revs...)...)
	if err != nil {
		return nil, nil, nil, err
	}
	order, merges, bound, err := parseRevList(out)
	if err != nil {
		return nil, nil, nil, err
	}
	return order, merges, bound, nil
}

// parseRevList reads `git rev-list --parents [--boundary]`: a commit id
// and its parents' per line, a boundary commit's prefixed with "-".
func parseRevList(out []byte) (order []string, merges, boundary map[string]bool, err error) {
	merges, boundary = map[string]bool{}, map[string]bool{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		id, bound := strings.CutPrefix(f[0], "-")
		for _, p := range append([]string{id}, f[1:]...) {
			if !isCommitID(p) {
				return nil, nil, nil, fmt.Errorf("git rev-list: unexpected line %q", strings.TrimSpace(line))
			}
		}
		if bound {
			boundary[id] = true
			continue
		}
		order = append(order, id)
		if len(f) > 2 {
			merges[id] = true
		}
	}
	return order, merges, boundary, nil
}

// boundedBuffer keeps the first 4 KiB written to it: git's error output,
// quoted in errors.
type boundedBuffer struct{ b bytes.Buffer }

func (w *boundedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - w.b.Len(); room > 0 {
		w.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (w *boundedBuffer) String() string { return strings.TrimSpace(w.b.String()) }
