package scanner

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
)

// rulePicker chooses the rules of a small scan (a pull request, the index)
// commit by commit. Each commit is scanned with a Detector of every rule
// its content could reach, which finds exactly what the full set would in
// it (see ruleBook). The workers find a commit's rules and compile the
// missing ones as the commits arrive, while git still writes: compiling
// them only once git has finished would put their cost, and the whole
// scan, after git's. The Detector only grows: a commit whose rules it
// holds reuses it, one that needs more builds a new one of the union.
type rulePicker struct {
	ctx context.Context
	s   *Scanner
	l   *lazyRules
	all func() (*detect.Detector, error)
	// trie is a Detector of no rule whose keyword trie holds every
	// rule's keywords: the Detectors of the generations from ownTrie on
	// are copies of it with their rules (see sharedTrie).
	trie func() *detect.Detector
	// size is the additions seen; past pickMax every rule is compiled and
	// used.
	size atomic.Int64
	cur  atomic.Pointer[ruleGen]
	grow sync.Mutex // one worker builds the next ruleGen
}

// ruleGen is the rules a picker's Detectors hold, and those Detectors,
// each made on first use.
type ruleGen struct {
	p    *rulePicker
	n    int // generations before this one
	have []bool
	cfg  config.Config
	// det decodes as gitleaks does; flat does not decode, for the
	// additions in which mark found nothing to decode (nearly all): there
	// gitleaks' decoder would run its encodings' regex over the text again
	// only to find nothing, the largest share of a Detector's work after
	// the rules' own regexes.
	detOnce, flatOnce sync.Once
	det, flat         *detect.Detector
}

// commitDetectors are the Detectors for one commit's additions.
type commitDetectors struct {
	g       *ruleGen
	det     *detect.Detector // when the picker was not asked (all rules)
	encoded []bool           // by addition: mark found something to decode
}

// forAdd returns the Detector to scan the commit's addition i with; each
// finds exactly what the decoding one would there.
func (d commitDetectors) forAdd(i int) *detect.Detector {
	if d.g == nil {
		return d.det
	}
	if d.encoded[i] {
		d.g.detOnce.Do(func() { d.g.det = d.g.detectorOf(true) })
		return d.g.det
	}
	d.g.flatOnce.Do(func() { d.g.flat = d.g.detectorOf(false) })
	return d.g.flat
}

// pickMax is the additions' size past which a small scan uses every rule
// (a variable for the tests).
var pickMax = smallScan

// newRulePicker returns nil for a user's config, whose rules are all
// compiled already.
func (s *Scanner) newRulePicker(ctx context.Context, all func() (*detect.Detector, error)) (*rulePicker, error) {
	if s.rules.eager {
		return nil, nil
	}
	l, err := s.rules.load()
	if err != nil {
		return nil, err
	}
	p := &rulePicker{ctx: ctx, s: s, l: l, all: all}
	p.trie = sync.OnceValue(func() *detect.Detector {
		cfg := config.Config{Keywords: map[string]struct{}{}}
		for _, r := range l.rules {
			for _, k := range r.keywords {
				// Translate lower-cases a rule's keywords.
				cfg.Keywords[strings.ToLower(k)] = struct{}{}
			}
		}
		return s.detector(ctx, cfg)
	})
	return p, nil
}

// ownTrie is the number of generations that build their own keyword trie
// before the picker's trie of every keyword is built (beside the second)
// and shared (from the third): a range that reaches few rules, such as a
// single commit, would spend 2–3 ms more CPU building the larger one.
const ownTrie = 2

// detectorOf returns a Detector of g's rules.
func (g *ruleGen) detectorOf(decode bool) *detect.Detector {
	if g.n < ownTrie {
		d := g.p.s.detector(g.p.ctx, g.cfg)
		if !decode {
			d.MaxDecodeDepth = 0
		}
		return d
	}
	return g.p.sharedTrie(g.cfg, decode)
}

// sharedTrie returns a Detector of cfg's rules that shares the picker's
// keyword trie of every rule. Each generation built its own trie before: 13
// for the 50-commit benchmark range, ~0.4 ms and 0.6 MB each (2 KB a
// state), where the trie of all 290 keywords costs 3 ms and 3 MB once. It
// finds what a Detector built of cfg would: Aho-Corasick reports every
// occurrence of every keyword, and DetectContext runs a rule when one of
// its own keywords was found, so the other keywords change nothing
// (TestSharedTrie). The copy is made through reflect because the trie is
// unexported; the maps and mutexes the copies share are written only by
// the Detector's own scans of sources and reports, which passman does not
// use.
func (p *rulePicker) sharedTrie(cfg config.Config, decode bool) *detect.Detector {
	d := new(detect.Detector)
	reflect.ValueOf(d).Elem().Set(reflect.ValueOf(p.trie()).Elem())
	d.Config = cfg
	if !decode {
		d.MaxDecodeDepth = 0
	}
	return d
}

// detectors returns the Detectors to scan c with. Workers call it
// concurrently; only one at a time compiles.
func (p *rulePicker) detectors(c *commitDiff) (commitDetectors, error) {
	if len(c.Adds) == 0 {
		return commitDetectors{}, nil // nothing to scan
	}
	n := 0
	for _, a := range c.Adds {
		n += len(a.Raw)
	}
	if p.size.Add(int64(n)) > int64(pickMax) {
		det, err := p.all()
		return commitDetectors{det: det}, err
	}
	need := make([]bool, len(p.l.rules))
	for _, i := range p.l.keywordless {
		need[i] = true
	}
	encoded := make([]bool, len(c.Adds))
	for i, a := range c.Adds {
		encoded[i] = p.l.mark(need, a.Raw)
	}
	if g := p.cur.Load(); g.covers(need) {
		return commitDetectors{g: g, encoded: encoded}, nil
	}
	p.grow.Lock()
	defer p.grow.Unlock()
	g := p.cur.Load()
	if g.covers(need) {
		return commitDetectors{g: g, encoded: encoded}, nil
	}
	if g != nil {
		for i, h := range g.have {
			need[i] = need[i] || h
		}
	}
	var idx []int
	for i, n := range need {
		if n {
			idx = append(idx, i)
		}
	}
	cfg, err := p.l.config(idx)
	if err != nil {
		return commitDetectors{}, err
	}
	gen := 0
	if g != nil {
		gen = g.n + 1
	}
	if gen == ownTrie-1 {
		go p.trie() // for the next generation
	}
	g = &ruleGen{p: p, n: gen, have: slices.Clone(need), cfg: cfg}
	p.cur.Store(g)
	return commitDetectors{g: g, encoded: encoded}, nil
}

func (g *ruleGen) covers(need []bool) bool {
	if g == nil {
		return false
	}
	for i, n := range need {
		if n && !g.have[i] {
			return false
		}
	}
	return true
}
