// Package benchrepo builds a deterministic git repository for benchmarking a
// secret scanner over history: real source text taken from the module cache,
// realistic churn (edits, additions, deletions, renames, merged side
// branches, an unmerged branch, a tag) and a known list of planted secrets,
// so that a scan's speed and recall can be compared from run to run and
// machine to machine. The same options give the same HEAD commit.
package benchrepo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/passman-dev/passman/internal/report"
)

// Options says what to build.
type Options struct {
	// Commits is the number of commits on the first-parent line of main,
	// merge commits included. At least MinCommits, so that every special
	// case of planting fits.
	Commits int
	// Seed seeds the PCG generator; the same seed and sources give the
	// same repository (the same HEAD).
	Seed uint64
	// Sources are the root directories text files are drawn from, walked
	// in the given order (see SourceDirs).
	Sources []string
	// Extra are further values to plant, such as a store's managed
	// secrets: kind KindExtra, rule RuleManaged. Each must be one line.
	Extra [][]byte
	// MergeHeavy shapes the history like busy real projects: small
	// commits (a few KB over one to six files), a feature branch merged
	// every few commits (15-20 % of all commits are merges), and some
	// merges resolving a conflict: main changed a file the branch
	// changed, and the merge keeps both changes plus lines of its own.
	MergeHeavy bool
}

// Planted is one secret put into the history on purpose.
type Planted struct {
	Commit string `json:"commit"` // the commit that introduced it
	File   string `json:"file"`   // path in that commit
	Line   int    `json:"line"`   // 1-based; the first line of a multi-line secret
	Rule   string `json:"rule"`   // gitleaks rule id, or RuleManaged
	Kind   string `json:"kind"`   // one of the Kind constants
	// Secret is kept out of the JSON manifest so the manifest can be
	// shared without spreading the values.
	Secret string `json:"-"`
}

// Manifest describes a built repository.
type Manifest struct {
	Head string `json:"head"` // main's tip
	// Commits counts every commit written, on all refs (what
	// `git rev-list --all --count` says), not only Options.Commits.
	Commits int `json:"commits"`
	// AddedBytes is the size of the lines the non-merge commits (and the
	// evil merges) add, about what `git log -p --all` shows with '+'.
	AddedBytes int64     `json:"added_bytes"`
	Planted    []Planted `json:"planted"`
}

// Kinds of planted secrets.
const (
	KindNormal       = "normal"        // added by a commit on main
	KindMergeOnly    = "merge-only"    // added by a merge commit, in neither parent
	KindDeletedLater = "deleted-later" // removed again by the next commit on main
	KindRenamed      = "renamed"       // its file is renamed by the next commit on main
	KindBranch       = "branch"        // added on a side branch (merged or not)
	KindExtra        = "extra"         // one of Options.Extra
)

// RuleManaged is the rule recorded for Options.Extra values: no gitleaks
// rule finds them, only a scanner that knows the store.
const RuleManaged = "passman-managed"

// gitleaks v8 default rule ids the planted secrets are built for.
const (
	ruleAWS        = "aws-access-token"
	ruleGitHub     = "github-pat"
	ruleSlack      = "slack-bot-token"
	ruleGeneric    = "generic-api-key"
	rulePrivateKey = "private-key"
)

// MinCommits is the smallest Options.Commits Build accepts.
const MinCommits = 100

const (
	// maxCorpusFile skips generated blobs and data dumps: benchmark
	// content should look like code people write.
	maxCorpusFile = 256 << 10
	// fileCap keeps repository files near real source file sizes: fast-import
	// writes the whole file for every change, so unbounded growth would
	// make the stream (and the time) grow with the square of the commits.
	fileCap = 48 << 10
	// initialFiles is how many corpus files the root commit adds, so the
	// first commits have something to edit.
	initialFiles = 120
	// startUnix is 2020-01-01T00:00:00Z; each commit is an hour later.
	startUnix = 1577836800
	// plantEvery is about how many main-line commits there are per
	// planted secret.
	plantEvery = 250

	mainRef    = "refs/heads/main"
	topicRef   = "refs/heads/topic" // reused by every merged side branch
	featureRef = "refs/heads/feature-x"
	tagName    = "v1.0.0"
	author     = "Bench Author <author@bench.example.com>"
	committer  = "Bench Committer <committer@bench.example.com>"
)

// textExts are the corpus file kinds: source and configuration a secret
// scanner meets in real repositories.
var textExts = map[string]bool{
	".go": true, ".md": true, ".txt": true, ".yaml": true, ".yml": true,
	".json": true, ".proto": true, ".sh": true, ".toml": true, ".mod": true,
	".rego": true,
}

// SourceDirs returns the directories of the modules whose packages the
// module in moduleDir builds with (its own left out), sorted, so that the
// corpus is fixed by go.sum. Packages are listed for the default build
// (GOFLAGS cleared), so build tags in force do not change the corpus; only
// modules the build needs are read, so nothing is downloaded and go.sum is
// left alone.
func SourceDirs(ctx context.Context, moduleDir string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-test", "-f", "{{with .Module}}{{if not .Main}}{{.Dir}}{{end}}{{end}}", "./...")
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps in %s: %w: %s", moduleDir, err, strings.TrimSpace(stderr.String()))
	}
	var dirs []string
	for _, d := range strings.Split(string(out), "\n") {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs)
	return slices.Compact(dirs), nil
}

// Build creates the repository in dir, which must not exist or be empty,
// with one git fast-import stream, then checks out main. It needs git.
func Build(ctx context.Context, dir string, opts Options) (Manifest, error) {
	if opts.Commits < MinCommits {
		return Manifest{}, fmt.Errorf("benchrepo: %d commits, need at least %d", opts.Commits, MinCommits)
	}
	if len(opts.Sources) == 0 {
		return Manifest{}, errors.New("benchrepo: no source directories")
	}
	for i, v := range opts.Extra {
		if len(v) == 0 || bytes.ContainsAny(v, "\x00\r\n") {
			return Manifest{}, fmt.Errorf("benchrepo: extra value %d is empty or not a single line", i)
		}
	}
	if err := emptyDir(dir); err != nil {
		return Manifest{}, err
	}
	c, err := loadCorpus(ctx, opts.Sources)
	if err != nil {
		return Manifest{}, err
	}

	// git must not see the user's or the system's configuration (hooks,
	// templates, autocrlf, signing, ...): it could change the objects.
	home, err := os.MkdirTemp("", "benchrepo-home-")
	if err != nil {
		return Manifest{}, fmt.Errorf("benchrepo: temporary home: %w", err)
	}
	defer os.RemoveAll(home)
	g := gitRunner{dir: dir, env: gitEnv(home)}

	if err := g.run(ctx, nil, "init", "-q", "--template="); err != nil {
		return Manifest{}, err
	}
	// Not `init -b`: symbolic-ref works with every git version.
	if err := g.run(ctx, nil, "symbolic-ref", "HEAD", mainRef); err != nil {
		return Manifest{}, err
	}
	marksFile := filepath.Join(home, "marks")
	gen := newGenerator(ctx, opts, c)
	if err := g.fastImport(ctx, marksFile, gen.run); err != nil {
		return Manifest{}, err
	}
	marks, err := readMarks(marksFile)
	if err != nil {
		return Manifest{}, err
	}
	// fast-import writes objects and refs only; the work tree and index
	// must be brought to main for a normal repository.
	if err := g.run(ctx, nil, "reset", "-q", "--hard"); err != nil {
		return Manifest{}, err
	}

	m := Manifest{Commits: gen.ncommits, AddedBytes: gen.added}
	if m.Head = marks[gen.mainTip]; m.Head == "" {
		return Manifest{}, fmt.Errorf("benchrepo: no commit for main's mark :%d", gen.mainTip)
	}
	for _, p := range gen.planted {
		if p.Commit = marks[p.mark]; p.Commit == "" {
			return Manifest{}, fmt.Errorf("benchrepo: no commit for mark :%d", p.mark)
		}
		m.Planted = append(m.Planted, p.Planted)
	}
	return m, nil
}

// emptyDir creates dir if missing and fails if it holds anything, so a
// build never mixes with (or deletes) earlier files.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("benchrepo: create %s: %w", dir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("benchrepo: read %s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("benchrepo: %s is not empty", dir)
	}
	return nil
}

// gitEnv is the environment minus anything that points git elsewhere
// (GIT_DIR, GIT_INDEX_FILE, ... as set inside hooks) or configures it.
func gitEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GIT_") || k == "HOME" || k == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+home,
		"XDG_CONFIG_HOME="+home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
	)
}

type gitRunner struct {
	dir string
	env []string
}

func (g gitRunner) command(ctx context.Context, args ...string) *exec.Cmd {
	// gc.auto=0: an automatic repack in the middle would only cost time.
	cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "gc.auto=0"}, args...)...)
	cmd.Dir = g.dir
	cmd.Env = g.env
	return cmd
}

func (g gitRunner) run(ctx context.Context, stdin io.Reader, args ...string) error {
	cmd := g.command(ctx, args...)
	cmd.Stdin = stdin
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("benchrepo: git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// fastImport runs one git fast-import fed by write: a single process for
// the whole history instead of several per commit.
func (g gitRunner) fastImport(ctx context.Context, marksFile string, write func(io.Writer) error) error {
	// Fast packing instead of small: fast-import deltas each blob against
	// the previous one in the stream (usually another file), which costs
	// more than half the time for little; zlib level 1 saves a third more.
	// `git gc --aggressive` packs the result like a real repository.
	cmd := g.command(ctx, "-c", "pack.compression=1", "fast-import", "--quiet", "--done", "--depth=0", "--export-marks="+marksFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("benchrepo: git fast-import: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("benchrepo: git fast-import: %w", err)
	}
	genErr := write(stdin)
	closeErr := stdin.Close()
	if err := cmd.Wait(); err != nil {
		// When the generator failed, git only saw the stream end early;
		// when git failed, the generator only saw the broken pipe: keep
		// both messages.
		return errors.Join(genErr, fmt.Errorf("benchrepo: git fast-import: %w: %s", err, strings.TrimSpace(stderr.String())))
	}
	if genErr != nil {
		return genErr
	}
	if closeErr != nil {
		return fmt.Errorf("benchrepo: git fast-import stdin: %w", closeErr)
	}
	return nil
}

// readMarks reads fast-import's ":mark sha" lines.
func readMarks(file string) (map[int]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("benchrepo: read marks: %w", err)
	}
	marks := make(map[int]string)
	for line := range strings.Lines(string(b)) {
		mark, sha, ok := strings.Cut(strings.TrimSpace(line), " ")
		n, err := strconv.Atoi(strings.TrimPrefix(mark, ":"))
		if !ok || err != nil || !strings.HasPrefix(mark, ":") {
			return nil, fmt.Errorf("benchrepo: marks file: bad line %q", line)
		}
		marks[n] = sha
	}
	return marks, nil
}

// corpus is the list of candidate files; contents are read when picked,
// which keeps memory small and the start fast.
type corpus struct {
	files []corpusFile
	bad   map[int]bool // read and found unusable
}

type corpusFile struct {
	path string // on disk
	rel  string // in the repository: <source base>/<path inside the source>
}

func loadCorpus(ctx context.Context, sources []string) (*corpus, error) {
	c := &corpus{bad: make(map[int]bool)}
	for _, root := range sources {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		base := sourceBase(root)
		// WalkDir visits in lexical order, which makes the list, and so
		// the repository, independent of the file system.
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() {
				// Test fixtures are full of sample secrets that would
				// blur the planted ones; the rest is what go ignores.
				if p != root && (name == "testdata" || name == "vendor" || name == "node_modules" ||
					strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || !textExts[path.Ext(name)] {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			rel = path.Join(base, filepath.ToSlash(rel))
			// gitleaks skips its own configuration by path.
			if !safePath(rel) || strings.Contains(rel, "gitleaks.toml") {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Size() > 0 && info.Size() <= maxCorpusFile {
				c.files = append(c.files, corpusFile{path: p, rel: rel})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("benchrepo: walk source %s: %w", root, err)
		}
	}
	if len(c.files) == 0 {
		return nil, errors.New("benchrepo: no text files in the sources")
	}
	return c, nil
}

// sourceBase names a source in repository paths: the module directory name
// without its @version, with the parent for major-version directories
// ("jsonschema-v6", not "v6").
func sourceBase(root string) string {
	b := filepath.Base(filepath.Clean(root))
	b, _, _ = strings.Cut(b, "@")
	if len(b) > 1 && b[0] == 'v' && strings.Trim(b[1:], "0123456789") == "" {
		b = filepath.Base(filepath.Dir(filepath.Clean(root))) + "-" + b
	}
	// The module cache writes upper case as "!x"; keep paths plain.
	b = strings.Map(func(r rune) rune {
		if r < 0x80 && safeByte(byte(r)) && r != '/' {
			return r
		}
		return -1
	}, b)
	if b == "" || b == "." || b == ".." {
		b = "src"
	}
	return b
}

// safePath admits only paths fast-import takes unquoted and no shell or
// scanner treats specially.
func safePath(p string) bool {
	if p == "" || p[0] == '/' || strings.Contains(p, "//") {
		return false
	}
	for i := range len(p) {
		if !safeByte(p[i]) {
			return false
		}
	}
	return true
}

func safeByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		strings.IndexByte("._/@+-", b) >= 0
}

// secretMarkers keep corpus files that already hold something the planted
// rules find out of the repository, so the planted list stays the truth
// for those rules.
var secretMarkers = [][]byte{
	[]byte("PRIVATE KEY"), []byte("AKIA"), []byte("ghp_"), []byte("xoxb-"), []byte("xoxp-"),
}

// read returns a corpus file's content, or ok false when it is binary or
// holds a secret marker.
func (c *corpus) read(i int) (b []byte, ok bool, err error) {
	b, err = os.ReadFile(c.files[i].path)
	if err != nil {
		return nil, false, fmt.Errorf("benchrepo: read corpus: %w", err)
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return nil, false, nil
	}
	for _, m := range secretMarkers {
		if bytes.Contains(b, m) {
			return nil, false, nil
		}
	}
	return b, true, nil
}

// tree is one branch's files; paths keeps an order for seeded picking
// (map order is random).
type tree struct {
	files map[string][]byte
	paths []string
	index map[string]int
}

func newTree() *tree {
	return &tree{files: make(map[string][]byte), index: make(map[string]int)}
}

func (t *tree) clone() *tree {
	// Contents are never changed in place, so sharing them is safe.
	return &tree{files: maps.Clone(t.files), paths: slices.Clone(t.paths), index: maps.Clone(t.index)}
}

func (t *tree) set(p string, b []byte) {
	if _, ok := t.files[p]; !ok {
		t.index[p] = len(t.paths)
		t.paths = append(t.paths, p)
	}
	t.files[p] = b
}

func (t *tree) remove(p string) {
	i, ok := t.index[p]
	if !ok {
		return
	}
	last := t.paths[len(t.paths)-1]
	t.paths[i] = last
	t.index[last] = i
	t.paths = t.paths[:len(t.paths)-1]
	delete(t.index, p)
	delete(t.files, p)
}

// pick returns a random path that ok accepts, giving up after a number of
// tries rather than scanning: callers can live without one.
func (t *tree) pick(rng *rand.Rand, ok func(string) bool) (string, bool) {
	return pickFrom(rng, t.paths, ok)
}

func pickFrom(rng *rand.Rand, list []string, ok func(string) bool) (string, bool) {
	if len(list) == 0 {
		return "", false
	}
	for range 64 {
		if p := list[rng.IntN(len(list))]; ok(p) {
			return p, true
		}
	}
	return "", false
}

// change is one fast-import file command.
type change struct {
	op       byte // 'M', 'D' or 'R'
	path, to string
	data     []byte
}

// changeSet is one commit's file commands in order, a later write to a path
// replacing the earlier one so each blob is sent once.
type changeSet struct {
	list   []*change
	byPath map[string]*change
}

func newChangeSet() *changeSet { return &changeSet{byPath: make(map[string]*change)} }

func (cs *changeSet) first() string {
	if len(cs.list) == 0 {
		return ""
	}
	return cs.list[0].path
}

// job is a secret waiting for a commit of the right sort.
type job struct {
	due    int // main-line commit count from which it may be planted
	kind   string
	rule   string
	lines  []string // inserted as they are
	secret string
	where  extraContext
	done   bool
}

type extraContext int

const (
	ctxBare extraContext = iota
	ctxURL
	ctxJSON
	ctxYAML
	ctxEnv
	numContexts
)

type plantRec struct {
	Planted
	mark int
}

// pending is what the next main commit must do to a just planted secret.
type pending struct {
	kind  string
	path  string
	line  int // 0-based
	lines []string
}

// side is a topic branch between its fork and its merge.
type side struct {
	n          int
	fork, tip  int // marks
	tree       *tree
	touched    map[string]bool // paths the branch changed: main keeps off them
	touchList  []string        // the same in order, for seeded picking
	remaining  int             // side commits still to write
	mainSince  int             // main commits since the fork
	mainNeeded int             // main commits to write before the merge
	// conflicts are what main appended, since the fork, to files the
	// branch changed (MergeHeavy): the merge must resolve them.
	conflicts map[string][]byte
}

type generator struct {
	ctx  context.Context
	opts Options
	rng  *rand.Rand
	c    *corpus
	w    *report.ErrWriter

	marks    int
	ncommits int
	added    int64
	used     map[string]bool // every path any tree ever had: new paths never collide

	main      *tree
	mainTip   int
	mainCount int
	side      *side
	topics    int
	nextFork  int
	pending   *pending
	featured  bool
	tagged    bool
	jobs      []*job
	planted   []plantRec
	ruleCycle int
}

func newGenerator(ctx context.Context, opts Options, c *corpus) *generator {
	g := &generator{
		ctx:  ctx,
		opts: opts,
		// The second PCG word is fixed: one seed number is the whole
		// configuration.
		rng:  rand.New(rand.NewPCG(opts.Seed, 0x62656e6368726570)),
		c:    c,
		used: make(map[string]bool),
		main: newTree(),
	}
	g.nextFork = 15 + g.rng.IntN(20)
	g.jobs = g.makeJobs()
	return g
}

var rules = []string{ruleAWS, ruleGitHub, ruleSlack, ruleGeneric, rulePrivateKey}

// makeJobs decides every secret up front: about one per plantEvery commits,
// with each special kind and each rule at least once, and each extra value
// at least once with all contexts used.
func (g *generator) makeJobs() []*job {
	n := max(g.opts.Commits/plantEvery, 8)
	// Special kinds are spread among normal ones.
	kinds := []string{KindNormal, KindMergeOnly, KindNormal, KindDeletedLater, KindNormal, KindRenamed, KindNormal, KindBranch}
	var jobs []*job
	for i := range n {
		j := &job{kind: kinds[i%len(kinds)], rule: g.nextRule()}
		j.lines, j.secret = g.secretFor(j.rule)
		jobs = append(jobs, j)
	}
	if len(g.opts.Extra) > 0 {
		for i := range max(len(g.opts.Extra), int(numContexts)) {
			v := string(g.opts.Extra[i%len(g.opts.Extra)])
			j := &job{kind: KindExtra, rule: RuleManaged, secret: v, where: extraContext(i % int(numContexts))}
			j.lines = []string{extraLine(j.where, v)}
			jobs = append(jobs, j)
		}
	}
	g.rng.Shuffle(len(jobs), func(a, b int) { jobs[a], jobs[b] = jobs[b], jobs[a] })
	// Due times end at three quarters of the history so that the ones
	// waiting for a side branch or merge still find one.
	span := g.opts.Commits*3/4 - 2
	for i, j := range jobs {
		j.due = 2 + i*span/len(jobs)
	}
	return jobs
}

func (g *generator) nextRule() string {
	r := rules[g.ruleCycle%len(rules)]
	g.ruleCycle++
	return r
}

func extraLine(c extraContext, v string) string {
	switch c {
	case ctxURL:
		return `database_url = "postgres://app:` + v + `@db:5432/app"`
	case ctxJSON:
		return `  "password": "` + v + `",`
	case ctxYAML:
		return "  password: " + v
	case ctxEnv:
		return "DB_PASSWORD=" + v
	}
	return v
}

const (
	upperB32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	letters  = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digits   = "0123456789"
	alnum    = letters + digits
	b64      = alnum + "+/"
)

func (g *generator) randString(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.rng.IntN(len(alphabet))]
	}
	return string(b)
}

// secretFor builds a value its gitleaks rule reports: the rule's regex,
// above its entropy threshold, clear of its allowlist and stop words. The
// prefixes alone are not secrets, so this file holds none.
func (g *generator) secretFor(rule string) (lines []string, secret string) {
	for {
		switch rule {
		case ruleAWS:
			secret = "AKIA" + g.randString(upperB32, 16)
			if entropy(secret) < 3 || strings.HasSuffix(secret, "EXAMPLE") {
				continue
			}
			return []string{`aws_access_key_id = "` + secret + `"`}, secret
		case ruleGitHub:
			secret = "ghp_" + g.randString(alnum, 36)
			if entropy(secret) < 3 {
				continue
			}
			return []string{`github_token = "` + secret + `"`}, secret
		case ruleSlack:
			secret = "xoxb-" + g.randString(digits, 12) + "-" + g.randString(digits, 13) + "-" + g.randString(alnum, 24)
			if entropy(secret) < 3 {
				continue
			}
			return []string{`slack_bot_token = "` + secret + `"`}, secret
		case ruleGeneric:
			// Letters and digits alternate: no three letters in a row, so
			// none of the rule's stop words ("admin", "md5", ...) can
			// appear and silence it.
			b := make([]byte, 24)
			for i := range b {
				if i%2 == 0 {
					b[i] = letters[g.rng.IntN(len(letters))]
				} else {
					b[i] = digits[g.rng.IntN(len(digits))]
				}
			}
			if secret = string(b); entropy(secret) < 3.5 {
				continue
			}
			return []string{`api_key = "` + secret + `"`}, secret
		case rulePrivateKey:
			dashes := strings.Repeat("-", 5)
			typ := []string{"RSA ", "EC ", "OPENSSH ", ""}[g.rng.IntN(4)]
			lines = append(lines, dashes+"BEGIN "+typ+"PRIVATE KEY"+dashes)
			for range 6 + g.rng.IntN(8) {
				lines = append(lines, g.randString(b64, 64))
			}
			lines = append(lines, g.randString(b64, 4+g.rng.IntN(15)*4), dashes+"END "+typ+"PRIVATE KEY"+dashes)
			return lines, strings.Join(lines, "\n")
		default:
			panic("benchrepo: unknown rule " + rule)
		}
	}
}

// entropy is Shannon entropy in bits per byte, as gitleaks computes it.
func entropy(s string) float64 {
	var counts [256]int
	for i := range len(s) {
		counts[s[i]]++
	}
	var e float64
	for _, n := range counts {
		if n > 0 {
			f := float64(n) / float64(len(s))
			e -= f * math.Log2(f)
		}
	}
	return e
}

// run writes the whole fast-import stream.
func (g *generator) run(out io.Writer) error {
	bw := bufio.NewWriterSize(out, 1<<20)
	g.w = &report.ErrWriter{W: bw}
	if err := g.history(); err != nil {
		return err
	}
	g.w.Printf("done\n")
	if g.w.Err != nil {
		return fmt.Errorf("benchrepo: write stream: %w", g.w.Err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("benchrepo: write stream: %w", err)
	}
	return nil
}

func (g *generator) history() error {
	if err := g.rootCommit(); err != nil {
		return err
	}
	for g.mainCount < g.opts.Commits {
		if err := g.ctx.Err(); err != nil {
			return err
		}
		if g.w.Err != nil {
			return fmt.Errorf("benchrepo: write stream: %w", g.w.Err)
		}
		var err error
		left := g.opts.Commits - g.mainCount
		s := g.side
		switch {
		// Eight main commits hold a whole side branch window (at most
		// three main commits, one more for a pending fix, the merge).
		case s == nil && left >= 8 && (g.mainCount >= g.nextFork || left < 20 && g.due(KindBranch, KindMergeOnly)):
			err = g.fork()
		case s != nil && s.remaining > 0 && g.opts.MergeHeavy && s.mainSince > 0 && len(s.conflicts) == 0 && g.pending == nil && g.rng.IntN(4) == 0:
			err = g.backMerge()
		case s != nil && s.remaining > 0 && (s.mainSince >= s.mainNeeded || g.rng.IntN(2) == 0):
			err = g.sideCommit(false)
		case s != nil && s.remaining == 0 && s.mainSince >= s.mainNeeded && g.pending == nil:
			err = g.merge()
		case s == nil && !g.featured && g.mainCount >= g.opts.Commits/2:
			err = g.feature()
		default:
			err = g.mainCommit()
		}
		if err != nil {
			return err
		}
		if !g.tagged && g.mainCount >= g.opts.Commits*3/4 {
			g.tag()
		}
	}
	for _, j := range g.jobs {
		if !j.done {
			return fmt.Errorf("benchrepo: %d commits are too few to plant every secret (a %s one is left)", g.opts.Commits, j.kind)
		}
	}
	return nil
}

func (g *generator) nextMark() int {
	g.marks++
	return g.marks
}

// emit writes one commit. Every commit names its parent with from, so
// fast-import starts from that tree whatever the ref held before.
func (g *generator) emit(ref string, mark, from, merge int, msg string, cs *changeSet) {
	ts := startUnix + int64(g.ncommits)*3600
	g.ncommits++
	w := g.w
	w.Printf("commit %s\nmark :%d\nauthor %s %d +0000\ncommitter %s %d +0000\ndata %d\n%s\n",
		ref, mark, author, ts, committer, ts, len(msg), msg)
	if from > 0 {
		w.Printf("from :%d\n", from)
	}
	if merge > 0 {
		w.Printf("merge :%d\n", merge)
	}
	for _, c := range cs.list {
		switch c.op {
		case 'M':
			w.Printf("M 100644 inline %s\ndata %d\n", c.path, len(c.data))
			_, _ = w.Write(c.data) // ErrWriter keeps the error for the check in history
			w.Printf("\n")
		case 'D':
			w.Printf("D %s\n", c.path)
		case 'R':
			w.Printf("R %s %s\n", c.path, c.to)
		}
	}
	w.Printf("\n")
}

// tag adds an annotated tag on main, one more ref a scanner must follow.
func (g *generator) tag() {
	g.tagged = true
	msg := "Release " + tagName + "\n"
	g.w.Printf("tag %s\nfrom :%d\ntagger %s %d +0000\ndata %d\n%s\n",
		tagName, g.mainTip, committer, startUnix+int64(g.ncommits)*3600, len(msg), msg)
}

// write, del and mv change a tree and record the change for the commit.
func (g *generator) write(t *tree, cs *changeSet, p string, b []byte) {
	t.set(p, b)
	g.used[p] = true
	if c, ok := cs.byPath[p]; ok && c.op == 'M' {
		c.data = b
		return
	}
	c := &change{op: 'M', path: p, data: b}
	cs.list = append(cs.list, c)
	cs.byPath[p] = c
}

func (g *generator) del(t *tree, cs *changeSet, p string) {
	t.remove(p)
	cs.list = append(cs.list, &change{op: 'D', path: p})
	delete(cs.byPath, p)
}

func (g *generator) mv(t *tree, cs *changeSet, from, to string) {
	b := t.files[from]
	t.remove(from)
	t.set(to, b)
	g.used[to] = true
	cs.list = append(cs.list, &change{op: 'R', path: from, to: to})
	delete(cs.byPath, from)
}

// uniquePath returns p, or p with a number before its extension, such that
// no tree ever had it.
func (g *generator) uniquePath(p string) string {
	if !g.used[p] {
		return p
	}
	ext := path.Ext(p)
	stem := strings.TrimSuffix(p, ext)
	for n := 2; ; n++ {
		if q := stem + "-" + strconv.Itoa(n) + ext; !g.used[q] {
			return q
		}
	}
}

// pickCorpus returns a random usable corpus file.
func (g *generator) pickCorpus(ok func(corpusFile) bool) (corpusFile, []byte, error) {
	for range 256 {
		i := g.rng.IntN(len(g.c.files))
		if g.c.bad[i] || ok != nil && !ok(g.c.files[i]) {
			continue
		}
		b, good, err := g.c.read(i)
		if err != nil {
			return corpusFile{}, nil, err
		}
		if !good {
			g.c.bad[i] = true
			continue
		}
		return g.c.files[i], b, nil
	}
	return corpusFile{}, nil, errors.New("benchrepo: too few usable text files in the sources")
}

// corpusLines returns runs of whole lines, about target bytes, from as many
// corpus files as it takes: real code to insert. (A run from a random line
// to the end of an average file is only a few KB.)
func (g *generator) corpusLines(target int) ([]byte, error) {
	var out []byte
	for len(out) < target {
		_, b, err := g.pickCorpus(nil)
		if err != nil {
			return nil, err
		}
		lines := splitLines(b)
		for _, l := range lines[g.rng.IntN(len(lines)):] {
			if len(out) >= target {
				break
			}
			out = append(out, l...)
		}
	}
	return out, nil
}

// splitLines splits after each newline, giving the last line one if it
// lacks it.
func splitLines(b []byte) [][]byte {
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return [][]byte{[]byte("\n")}
	}
	if last := lines[len(lines)-1]; last[len(last)-1] != '\n' {
		lines[len(lines)-1] = append(slices.Clip(last), '\n')
	}
	return lines
}

func withNewline(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] != '\n' {
		return append(slices.Clip(b), '\n')
	}
	return b
}

// addFile copies a corpus file into t under a path no tree ever had.
func (g *generator) addFile(t *tree, cs *changeSet, noMod bool) (string, error) {
	f, b, err := g.pickCorpus(func(f corpusFile) bool { return !noMod || path.Ext(f.rel) != ".mod" })
	if err != nil {
		return "", err
	}
	p := g.uniquePath(f.rel)
	b = withNewline(b)
	g.write(t, cs, p, b)
	g.added += int64(len(b))
	return p, nil
}

// modify replaces a run of lines of p with about target bytes of corpus
// lines, trimming more old lines when the file would pass fileCap.
func (g *generator) modify(t *tree, cs *changeSet, p string, target int) error {
	ins, err := g.corpusLines(target)
	if err != nil {
		return err
	}
	old := t.files[p]
	lines := splitLines(old)
	pos := g.rng.IntN(len(lines) + 1)
	end := pos + g.rng.IntN(min(len(lines)-pos, 24)+1)
	size := len(old) + len(ins)
	for _, l := range lines[pos:end] {
		size -= len(l)
	}
	for size > fileCap && end < len(lines) {
		size -= len(lines[end])
		end++
	}
	for size > fileCap && pos > 0 {
		pos--
		size -= len(lines[pos])
	}
	b := make([]byte, 0, size)
	for _, l := range lines[:pos] {
		b = append(b, l...)
	}
	b = append(b, ins...)
	for _, l := range lines[end:] {
		b = append(b, l...)
	}
	g.write(t, cs, p, b)
	g.added += int64(len(ins))
	return nil
}

// budget is the bytes one commit adds: 16–44 KiB, about 30 KB on average;
// 2–16 KiB in a merge-heavy history.
func (g *generator) budget() int {
	if g.opts.MergeHeavy {
		return 2<<10 + g.rng.IntN(14<<10)
	}
	return 16<<10 + g.rng.IntN(28<<10)
}

func (g *generator) rootCommit() error {
	mark := g.nextMark()
	cs := newChangeSet()
	for range initialFiles {
		if _, err := g.addFile(g.main, cs, false); err != nil {
			return err
		}
	}
	g.emit(mainRef, mark, 0, 0, "Initial import\n", cs)
	g.mainTip, g.mainCount = mark, 1
	return nil
}

// locked reports paths the open side branch owns until its merge.
func (g *generator) locked(p string) bool { return g.side != nil && g.side.touched[p] }

// plantable excludes files gitleaks skips by path (go.mod) so that every
// planted secret counts.
func plantable(p string) bool { return path.Ext(p) != ".mod" }

func (g *generator) mainCommit() error {
	mark := g.nextMark()
	cs := newChangeSet()
	busy := make(map[string]bool) // changed by this commit already
	ok := func(p string) bool { return !busy[p] && !g.locked(p) }
	var subject string
	if p := g.pending; p != nil {
		g.pending = nil
		switch p.kind {
		case KindDeletedLater:
			lines := splitLines(g.main.files[p.path])
			if p.line+len(p.lines) > len(lines) || string(lines[p.line]) != p.lines[0]+"\n" {
				return fmt.Errorf("benchrepo: internal error: planted lines moved in %s", p.path)
			}
			b := slices.Concat(lines[:p.line]...)
			b = append(b, slices.Concat(lines[p.line+len(p.lines):]...)...)
			g.write(g.main, cs, p.path, b)
			subject = "Remove credentials from " + p.path
		case KindRenamed:
			to := g.uniquePath(path.Join(path.Dir(p.path), "legacy", path.Base(p.path)))
			g.mv(g.main, cs, p.path, to)
			busy[to] = true
			subject = "Move " + p.path + " to " + to
		}
		busy[p.path] = true
	}

	budget := g.budget()
	modifyN := func(n, budget int) error {
		for range n {
			p, found := g.main.pick(g.rng, ok)
			if !found {
				return nil
			}
			if err := g.modify(g.main, cs, p, budget/n); err != nil {
				return err
			}
			busy[p] = true
		}
		return nil
	}
	var err error
	switch r := g.rng.IntN(100); {
	case r < 3 && len(g.main.paths) > 60:
		if p, found := g.main.pick(g.rng, ok); found {
			g.del(g.main, cs, p)
			busy[p] = true
			subject = orElse(subject, "Remove "+p)
		}
		err = modifyN(1, budget)
	case r < 6:
		if p, found := g.main.pick(g.rng, ok); found {
			dir := path.Dir(p)
			to := g.uniquePath(path.Join(dir, "internal", path.Base(p)))
			g.mv(g.main, cs, p, to)
			busy[p], busy[to] = true, true
			subject = orElse(subject, "Move "+p+" to "+to)
		}
		err = modifyN(1, budget)
	case r < 26:
		for range 1 + g.rng.IntN(2) {
			before := g.added
			var p string
			if p, err = g.addFile(g.main, cs, false); err != nil {
				return err
			}
			busy[p] = true
			subject = orElse(subject, "Add "+p)
			budget -= int(g.added - before)
		}
		if budget > 4<<10 {
			err = modifyN(1, budget)
		}
	default:
		n := 1 + g.rng.IntN(3)
		if g.opts.MergeHeavy {
			n = 1 + g.rng.IntN(6)
		}
		err = modifyN(n, budget)
	}
	if err != nil {
		return err
	}
	if err := g.conflict(cs, busy); err != nil {
		return err
	}

	left := g.opts.Commits - g.mainCount
	kinds := []string{KindNormal, KindExtra}
	if g.side == nil && left >= 3 {
		// The next main commit must be an ordinary one to undo or move it.
		kinds = append(kinds, KindDeletedLater, KindRenamed)
	}
	if j := g.take(kinds...); j != nil {
		p, line, err := g.plant(g.main, cs, j, nil, ok)
		if err != nil {
			return err
		}
		g.record(mark, p, line, j)
		if j.kind == KindDeletedLater || j.kind == KindRenamed {
			g.pending = &pending{kind: j.kind, path: p, line: line - 1, lines: j.lines}
		}
	}
	g.emit(mainRef, mark, g.mainTip, 0, orElse(subject, "Update "+cs.first())+"\n", cs)
	g.mainTip = mark
	g.mainCount++
	if g.side != nil {
		g.side.mainSince++
	}
	return nil
}

// conflict, in a merge-heavy history, sometimes has main append lines to a
// file the open branch changed (and main had at the fork), which the merge
// must then resolve.
func (g *generator) conflict(cs *changeSet, busy map[string]bool) error {
	s := g.side
	if !g.opts.MergeHeavy || s == nil || g.rng.IntN(3) != 0 {
		return nil
	}
	p, found := pickFrom(g.rng, s.touchList, func(p string) bool {
		_, onMain := g.main.files[p]
		return onMain && !busy[p] && plantable(p) && (g.pending == nil || p != g.pending.path)
	})
	if !found {
		return nil
	}
	ins, err := g.corpusLines(512 + g.rng.IntN(2<<10))
	if err != nil {
		return err
	}
	g.write(g.main, cs, p, append(slices.Clip(g.main.files[p]), ins...))
	g.added += int64(len(ins))
	if s.conflicts == nil {
		s.conflicts = map[string][]byte{}
	}
	s.conflicts[p] = append(s.conflicts[p], ins...)
	busy[p] = true
	return nil
}

// orElse returns a unless it is empty.
func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// take returns the first due job of one of the kinds, marked done.
func (g *generator) take(kinds ...string) *job {
	for _, j := range g.jobs {
		if !j.done && j.due <= g.mainCount && slices.Contains(kinds, j.kind) {
			j.done = true
			return j
		}
	}
	return nil
}

func (g *generator) due(kinds ...string) bool {
	for _, j := range g.jobs {
		if !j.done && j.due <= g.mainCount && slices.Contains(kinds, j.kind) {
			return true
		}
	}
	return false
}

func (g *generator) record(mark int, file string, line int, j *job) {
	g.planted = append(g.planted, plantRec{mark: mark, Planted: Planted{File: file, Line: line, Rule: j.rule, Kind: j.kind, Secret: j.secret}})
}

// plant inserts the job's lines at a random line of a file of t, from
// candidates if not nil, that ok accepts (preferring one that suits the
// context), or in a new .env file. It returns the file and the 1-based line.
func (g *generator) plant(t *tree, cs *changeSet, j *job, candidates []string, ok func(string) bool) (string, int, error) {
	if candidates == nil {
		candidates = t.paths
	}
	text := strings.Join(j.lines, "\n") + "\n"
	g.added += int64(len(text))
	if j.where == ctxEnv && j.kind == KindExtra {
		if p, found := t.pick(g.rng, ok); found {
			for _, name := range []string{".env", ".env.local", ".env.production"} {
				if q := path.Join(path.Dir(p), name); !g.used[q] {
					head := "APP_ENV=production\nDB_HOST=db\nDB_USER=app\n"
					g.write(t, cs, q, []byte(head+text))
					return q, 4, nil
				}
			}
		}
	}
	want := map[extraContext][]string{ctxJSON: {".json"}, ctxYAML: {".yaml", ".yml"}}[j.where]
	if j.kind != KindExtra {
		want = nil
	}
	p, found := pickFrom(g.rng, candidates, func(p string) bool {
		return ok(p) && plantable(p) && (want == nil || slices.Contains(want, path.Ext(p)))
	})
	if !found {
		p, found = pickFrom(g.rng, candidates, func(p string) bool { return ok(p) && plantable(p) })
	}
	if !found {
		// No existing file to use: a new one will do.
		p = g.uniquePath("config/settings.txt")
		g.write(t, cs, p, []byte(text))
		return p, 1, nil
	}
	lines := splitLines(t.files[p])
	at := g.rng.IntN(len(lines) + 1)
	b := slices.Concat(lines[:at]...)
	b = append(b, text...)
	b = append(b, slices.Concat(lines[at:]...)...)
	g.write(t, cs, p, b)
	return p, at + 1, nil
}

// fork starts a topic branch at main's tip. Its first commit claims the
// existing files it will change right away, before main moves on, so main
// cannot have changed them and the merge is conflict-free.
func (g *generator) fork() error {
	g.topics++
	g.side = &side{
		n:          g.topics,
		fork:       g.mainTip,
		tree:       g.main.clone(),
		touched:    make(map[string]bool),
		remaining:  2 + g.rng.IntN(4),
		mainNeeded: 1 + g.rng.IntN(3),
	}
	g.nextFork = g.mainCount + 30 + g.rng.IntN(21)
	if g.opts.MergeHeavy {
		g.side.remaining = 1 + g.rng.IntN(4)
		g.nextFork = g.mainCount + 1 + g.rng.IntN(3)
	}
	return g.sideCommit(true)
}

func (g *generator) sideCommit(first bool) error {
	s := g.side
	mark := g.nextMark()
	cs := newChangeSet()
	touch := func(p string) {
		if !s.touched[p] {
			s.touched[p] = true
			s.touchList = append(s.touchList, p)
		}
	}
	budget := g.budget()
	var subject string
	if first {
		for range 1 + g.rng.IntN(2) {
			p, found := s.tree.pick(g.rng, func(p string) bool {
				return !s.touched[p] && plantable(p) && (g.pending == nil || p != g.pending.path)
			})
			if !found {
				continue
			}
			touch(p)
			if err := g.modify(s.tree, cs, p, budget/4); err != nil {
				return err
			}
		}
	}
	if first || g.rng.IntN(3) == 0 {
		p, err := g.addFile(s.tree, cs, true)
		if err != nil {
			return err
		}
		touch(p)
		subject = "Add " + p
	} else {
		for range 1 + g.rng.IntN(2) {
			p := s.touchList[g.rng.IntN(len(s.touchList))]
			if err := g.modify(s.tree, cs, p, budget/2); err != nil {
				return err
			}
		}
	}
	if j := g.take(KindBranch); j != nil {
		p, line, err := g.plant(s.tree, cs, j, s.touchList, func(string) bool { return true })
		if err != nil {
			return err
		}
		touch(p)
		g.record(mark, p, line, j)
	}
	from := s.tip
	if from == 0 {
		from = s.fork
	}
	g.emit(topicRef, mark, from, 0, fmt.Sprintf("topic-%d: %s\n", s.n, orElse(subject, "Update "+cs.first())), cs)
	s.tip = mark
	s.remaining--
	return nil
}

// backMerge merges main into the topic branch (MergeHeavy), as branches
// kept up to date do: the branch's tree becomes main's with the branch's
// own files, and the merge's diff against the branch is all that main did
// since the fork.
func (g *generator) backMerge() error {
	s := g.side
	mark := g.nextMark()
	cs := newChangeSet()
	next := g.main.clone()
	for _, p := range s.touchList {
		next.set(p, s.tree.files[p])
	}
	for _, p := range s.tree.paths {
		if _, ok := next.files[p]; !ok {
			cs.list = append(cs.list, &change{op: 'D', path: p})
		}
	}
	for _, p := range next.paths {
		if old, ok := s.tree.files[p]; !ok || !bytes.Equal(old, next.files[p]) {
			c := &change{op: 'M', path: p, data: next.files[p]}
			cs.list = append(cs.list, c)
			cs.byPath[p] = c
		}
	}
	s.tree = next
	g.emit(topicRef, mark, s.tip, g.mainTip, fmt.Sprintf("Merge branch 'main' into topic-%d\n", s.n), cs)
	s.tip = mark
	s.remaining--
	return nil
}

// merge writes the union of main and the topic branch: main's tree plus
// every file the branch touched. An evil merge adds a secret neither
// parent has.
func (g *generator) merge() error {
	s := g.side
	mark := g.nextMark()
	cs := newChangeSet()
	for _, p := range s.touchList {
		b := s.tree.files[p]
		if ins, ok := s.conflicts[p]; ok {
			// Both sides' changes, and a line of the resolution's own.
			b = append(slices.Clip(b), ins...)
			b = fmt.Appendf(b, "// merged topic-%d: kept both changes\n", s.n)
			g.added += int64(len(ins))
		}
		g.write(g.main, cs, p, b)
	}
	if j := g.take(KindMergeOnly); j != nil {
		p, line, err := g.plant(g.main, cs, j, nil, func(p string) bool { return !s.touched[p] })
		if err != nil {
			return err
		}
		g.record(mark, p, line, j)
	}
	g.emit(mainRef, mark, g.mainTip, s.tip, fmt.Sprintf("Merge branch 'topic-%d'\n", s.n), cs)
	g.mainTip = mark
	g.mainCount++
	g.side = nil
	return nil
}

// feature writes a branch that is never merged, with a secret only it has:
// a scanner that reads main alone misses it.
func (g *generator) feature() error {
	g.featured = true
	t := g.main.clone()
	from := g.mainTip
	all := func(string) bool { return true }
	for i := range 3 {
		mark := g.nextMark()
		cs := newChangeSet()
		p, err := g.addFile(t, cs, false)
		if err != nil {
			return err
		}
		if q, found := t.pick(g.rng, func(q string) bool { return q != p }); found {
			if err := g.modify(t, cs, q, g.budget()/2); err != nil {
				return err
			}
		}
		if i == 1 {
			j := &job{kind: KindBranch, rule: g.nextRule(), done: true}
			j.lines, j.secret = g.secretFor(j.rule)
			file, line, err := g.plant(t, cs, j, nil, all)
			if err != nil {
				return err
			}
			g.record(mark, file, line, j)
		}
		g.emit(featureRef, mark, from, 0, "feature-x: add "+p+"\n", cs)
		from = mark
	}
	return nil
}
