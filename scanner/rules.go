package scanner

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect/codec"
)

// ruleBook hands out the rules a scan needs. A user's config is translated
// whole when the Scanner is built, as before. The default rules are read
// through their index (rules_index.go) on first use: each rule's TOML is
// decoded, and its regexes compiled, only when some content could reach
// it. With RE2, compiling all ~240 rules costs ~90 ms, and decoding their
// TOML ~5 ms, more than a pre-commit hook's or a small pull request's whole
// scan; an empty input needs three of them.
//
// A subset gives exactly the full set's findings. gitleaks runs a rule on a
// fragment only if one of the rule's keywords occurs in the fragment
// (lower-cased) or in one of its decodings, or if the rule has no keywords;
// the subset holds every such rule for the content it was built for. Its
// keywords are its rules' only: gitleaks' prefilter (Aho-Corasick) reports
// every occurrence of every keyword, so the keywords a fragment is found to
// hold do not depend on the others in the trie, whose construction costs
// ~7 ms with all of them.
type ruleBook struct {
	full    config.Config // the eager book's rules
	eager   bool
	sources []ruleSource
	once    sync.Once
	lazy    *lazyRules
	err     error
}

// ruleSource is a rules file's TOML and its index.
type ruleSource struct {
	toml  string
	index *ruleIndex
}

// ruleIndex locates a rules file's parts: what precedes its first
// [[rules]] table (title, global allowlists), and each rule's tables,
// which decode alone to that rule (TestRuleIndex). It is generated from
// the file; size detects a file changed without regenerating it.
type ruleIndex struct {
	size    int
	globals [2]int
	rules   []indexedRule
}

type indexedRule struct {
	id         string
	keywords   []string
	start, end int
}

// lazyRule is one default rule's TOML, found by its keywords.
type lazyRule struct {
	id       string
	keywords []string
	toml     string
}

// lazyRules are the default rules, decoded and compiled one by one.
type lazyRules struct {
	rules       []lazyRule
	words       []string // every rule's keywords, lower-cased
	byWord      [][]int  // rule indexes per word
	keywordless []int
	// head and next chain the words by their first two bytes (head holds
	// word index+1; 0 ends a chain): finding which words occur in content
	// is one pass over it.
	head []int32
	next []int32
	// pairs has a bit set for each head that starts a chain: the test
	// fits the first level cache where head's 256 KB do not.
	pairs *[1 << 16 / 64]uint64

	// The global allowlists are compiled beside the first rules: their ~40
	// regexes cost as much as several rules'.
	globalsDone chan struct{}
	allowlists  []*config.Allowlist
	globalsErr  error

	mu       sync.Mutex
	compiled []*config.Rule // by rule index; nil until compiled
	errs     []error
	// stops holds the stop words taken out of compiled rules' allowlists
	// (see splitStopwords), by rule ID.
	stops sync.Map
}

func eagerBook(cfg config.Config) *ruleBook { return &ruleBook{full: cfg, eager: true} }

// lazyBook reads the rules of sources, in order, as if their TOML were one
// file. It decodes the TOML straight into gitleaks' ViperConfig, as viper
// would (TestDefaultRulesDecodeAsViper) but in a tenth of the time.
func lazyBook(sources ...ruleSource) *ruleBook {
	return &ruleBook{sources: sources}
}

// globalsTOML is the text of the sources before their first rules: the
// top-level keys and global allowlists.
func (b *ruleBook) globalsTOML() string {
	var parts []string
	for _, s := range b.sources {
		parts = append(parts, s.toml[s.index.globals[0]:s.index.globals[1]])
	}
	return strings.Join(parts, "\n")
}

func (b *ruleBook) load() (*lazyRules, error) {
	b.once.Do(func() {
		l := &lazyRules{head: make([]int32, 1<<16), pairs: new([1 << 16 / 64]uint64), globalsDone: make(chan struct{})}
		for _, s := range b.sources {
			if len(s.toml) != s.index.size {
				b.err = fmt.Errorf("load default rules: the rule index is out of date (go generate ./scanner)")
				return
			}
			for _, r := range s.index.rules {
				l.rules = append(l.rules, lazyRule{id: r.id, keywords: r.keywords, toml: s.toml[r.start:r.end]})
			}
		}
		var globals config.ViperConfig
		if err := toml.Unmarshal([]byte(b.globalsTOML()), &globals); err != nil {
			b.err = fmt.Errorf("load default rules: %w", err)
			return
		}
		go func() {
			defer close(l.globalsDone)
			// The global allowlists alone, through gitleaks' own translation.
			g, err := globals.Translate()
			if err != nil {
				l.globalsErr = fmt.Errorf("load default rules: %w", err)
				return
			}
			l.allowlists = g.Allowlists
		}()
		l.compiled, l.errs = make([]*config.Rule, len(l.rules)), make([]error, len(l.rules))
		word := map[string]int{}
		for i, r := range l.rules {
			if len(r.keywords) == 0 {
				l.keywordless = append(l.keywordless, i)
				continue
			}
			for _, k := range r.keywords {
				k = strings.ToLower(k)
				if len(k) < 2 {
					// Too short to chain: the rule is always compiled.
					l.keywordless = append(l.keywordless, i)
					continue
				}
				n, ok := word[k]
				if !ok {
					n = len(l.words)
					word[k] = n
					l.words = append(l.words, k)
					l.byWord = append(l.byWord, nil)
				}
				l.byWord[n] = append(l.byWord[n], i)
			}
		}
		l.next = make([]int32, len(l.words))
		for n, w := range l.words {
			key := uint16(w[0])<<8 | uint16(w[1])
			l.next[n] = l.head[key]
			l.head[key] = int32(n + 1)
			l.pairs[key>>6] |= 1 << (key & 63)
		}
		b.lazy = l
	})
	return b.lazy, b.err
}

// prewarm reads the default rules' index and compiles what almost any
// content reaches (the global allowlists, the rules without keywords, and
// commonRules), so that a small scan can do it while its first git
// processes start, before the first diff arrives.
func (b *ruleBook) prewarm() {
	if b.eager {
		return
	}
	l, err := b.load()
	if err != nil {
		return // the scan reports it
	}
	idx := slices.Clone(l.keywordless)
	for i, r := range l.rules {
		if slices.Contains(commonRules, r.id) {
			idx = append(idx, i)
		}
	}
	_, _ = l.config(idx) // an error stays for the scan to report
}

// commonRules are the default rules whose keywords nearly every change to
// source code holds ("s.", "ey", "sk", "key", "token", ...): of 400
// commits of the merge-heavy benchmark history, 95 %, 81 %, 62 % and 39 %
// reached them, and no other rule 16 %. generic-api-key alone costs ~5 ms
// to decode and compile.
var commonRules = []string{"vault-service-token", "generic-api-key", "jwt", "twilio-api-key"}

// all returns every rule, compiled on all cores.
func (b *ruleBook) all() (config.Config, error) {
	if b.eager {
		return b.full, nil
	}
	l, err := b.load()
	if err != nil {
		return config.Config{}, err
	}
	idx := make([]int, len(l.rules))
	for i := range idx {
		idx[i] = i
	}
	return l.config(idx)
}

// forContent returns the rules that could find something in contents:
// for the eager book, all of them.
func (b *ruleBook) forContent(contents ...[]byte) (config.Config, error) {
	if b.eager {
		return b.full, nil
	}
	l, err := b.load()
	if err != nil {
		return config.Config{}, err
	}
	need := make([]bool, len(l.rules))
	for _, i := range l.keywordless {
		need[i] = true
	}
	for _, c := range contents {
		l.mark(need, c)
	}
	var idx []int
	for i, n := range need {
		if n {
			idx = append(idx, i)
		}
	}
	return l.config(idx)
}

// forRules returns the rules named in ids (and the rules they require).
func (b *ruleBook) forRules(ids map[string]bool) (config.Config, error) {
	if b.eager {
		c := b.full
		c.Rules, c.Keywords, c.OrderedRules = map[string]config.Rule{}, map[string]struct{}{}, nil
		var add func(id string)
		add = func(id string) {
			r, ok := b.full.Rules[id]
			if _, done := c.Rules[id]; done || !ok {
				return
			}
			c.Rules[id] = r
			c.OrderedRules = append(c.OrderedRules, id)
			for _, k := range r.Keywords {
				c.Keywords[k] = struct{}{}
			}
			for _, rr := range r.RequiredRules {
				add(rr.RuleID)
			}
		}
		for id := range ids {
			add(id)
		}
		slices.Sort(c.OrderedRules)
		return c, nil
	}
	l, err := b.load()
	if err != nil {
		return config.Config{}, err
	}
	var idx []int
	for i, r := range l.rules {
		if ids[r.id] {
			idx = append(idx, i)
		}
	}
	return l.config(idx)
}

// mark sets need for every rule with a keyword in content or in one of
// the decodings gitleaks would scan (up to maxDecodeDepth levels), and
// reports whether content holds anything to decode: gitleaks' decoder is
// deterministic, so where it found nothing here, a Detector scanning the
// same content finds nothing either.
func (l *lazyRules) mark(need []bool, content []byte) (encoded bool) {
	if len(content) == 0 {
		return false
	}
	// A view, not a copy: nothing here keeps raw, or anything decoded
	// from it, past the return, and content is not written meanwhile.
	raw := unsafe.String(&content[0], len(content))
	var segs []*codec.EncodedSegment
	var dec *codec.Decoder
	for depth := 0; ; depth++ {
		if !l.markASCII(need, raw) {
			l.markWords(need, strings.ToLower(raw))
		}
		if depth >= maxDecodeDepth {
			return encoded
		}
		if dec == nil {
			dec = codec.NewDecoder()
		}
		if raw, segs = dec.Decode(raw, segs); len(segs) == 0 {
			return encoded
		}
		encoded = true
	}
}

// markWords sets need for the rules of every word that occurs in lower.
func (l *lazyRules) markWords(need []bool, lower string) {
	for i := 0; i+1 < len(lower); i++ {
		key := uint16(lower[i])<<8 | uint16(lower[i+1])
		if l.pairs[key>>6]&(1<<(key&63)) == 0 {
			continue
		}
		for n := l.head[key]; n != 0; n = l.next[n-1] {
			if strings.HasPrefix(lower[i:], l.words[n-1]) {
				for _, r := range l.byWord[n-1] {
					need[r] = true
				}
			}
		}
	}
}

// markASCII is markWords(need, strings.ToLower(raw)) without the lowered
// copy, for ASCII text, whose lowering is byte by byte (the words are
// lower-case already). It reports false, having marked some words
// perhaps, at the first byte outside ASCII: Unicode's lowering is not byte
// by byte (the Kelvin sign lowers to "k").
func (l *lazyRules) markASCII(need []bool, raw string) bool {
	for i := 0; i+1 < len(raw); i++ {
		a, b := raw[i], raw[i+1]
		if a|b >= utf8.RuneSelf {
			return false
		}
		key := uint16(lowerASCII(a))<<8 | uint16(lowerASCII(b))
		if l.pairs[key>>6]&(1<<(key&63)) == 0 {
			continue
		}
	words:
		for n := l.head[key]; n != 0; n = l.next[n-1] {
			w := l.words[n-1]
			if len(raw)-i < len(w) {
				continue
			}
			for j := 2; j < len(w); j++ {
				if lowerASCII(raw[i+j]) != w[j] {
					continue words
				}
			}
			for _, r := range l.byWord[n-1] {
				need[r] = true
			}
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// config compiles the rules at idx that are not yet compiled (in parallel)
// and assembles a Config of them with every keyword.
func (l *lazyRules) config(idx []int) (config.Config, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var todo []int
	for _, i := range idx {
		if l.compiled[i] == nil && l.errs[i] == nil {
			todo = append(todo, i)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(todo)/8+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := w; j < len(todo); j += workers {
				l.compile(todo[j])
			}
		}()
	}
	wg.Wait()
	<-l.globalsDone
	if l.globalsErr != nil {
		return config.Config{}, l.globalsErr
	}
	cfg := config.Config{
		Rules:      make(map[string]config.Rule, len(idx)),
		Keywords:   map[string]struct{}{},
		Allowlists: l.allowlists,
	}
	for _, i := range idx {
		if err := l.errs[i]; err != nil {
			return config.Config{}, err
		}
		r := l.compiled[i]
		cfg.Rules[r.RuleID] = *r
		for _, k := range r.Keywords {
			cfg.Keywords[k] = struct{}{}
		}
		cfg.OrderedRules = append(cfg.OrderedRules, r.RuleID)
	}
	slices.Sort(cfg.OrderedRules)
	return cfg, nil
}

// compile decodes and translates rule i alone. A composite rule (one with
// [[rules.required]]) cannot be translated without the rules it requires,
// so one added to a default set fails here, at its first scan and in the
// tests that compile every rule, rather than running without them.
func (l *lazyRules) compile(i int) {
	var one config.ViperConfig
	if err := toml.Unmarshal([]byte(l.rules[i].toml), &one); err != nil {
		l.errs[i] = fmt.Errorf("default rule %q: %w", l.rules[i].id, err)
		return
	}
	if len(one.Rules) != 1 || one.Rules[0].ID != l.rules[i].id {
		l.errs[i] = fmt.Errorf("default rule %q: the rule index is out of date (go generate ./scanner)", l.rules[i].id)
		return
	}
	if sw := splitStopwords(&one); sw != nil {
		l.stops.Store(l.rules[i].id, sw)
	}
	c, err := translateOne(one)
	if err != nil {
		l.errs[i] = fmt.Errorf("default rule %q: %w", l.rules[i].id, err)
		return
	}
	cr := c.Rules[l.rules[i].id]
	l.compiled[i] = &cr
}

// stopwordsFor returns the stop words taken out of rule id's allowlists,
// or nil.
func (b *ruleBook) stopwordsFor(id string) *stopwordSet {
	if b.eager || b.lazy == nil {
		return nil
	}
	if sw, ok := b.lazy.stops.Load(id); ok {
		return sw.(*stopwordSet)
	}
	return nil
}

// minSplitStopwords is the size from which a rule allowlist's stop words
// are matched by a stopwordSet instead of gitleaks' own trie: the trie of
// generic-api-key's 1,446 words holds 8 MB, a sixth of a history scan's
// peak memory; the set holds ~100 KB.
const minSplitStopwords = 256

// splitStopwords takes the stop words out of the large "or" allowlists of
// vc's rule (dropping an allowlist left with no other check) and returns
// them, or nil. A finding the rule reports is then dropped when its secret
// holds one of them (stopwordSet.match), which is what gitleaks' allowlist
// did: in an "or" allowlist stop words allow a finding alone, and an
// allowlisted finding plays no further part (gitleaks' filter drops a
// generic finding for another one, never another for it).
func splitStopwords(vc *config.ViperConfig) *stopwordSet {
	r := &vc.Rules[0]
	var sw *stopwordSet
	kept := r.Allowlists[:0:0]
	for _, a := range r.Allowlists {
		if c := strings.ToUpper(a.Condition); len(a.StopWords) < minSplitStopwords || (c != "" && c != "OR" && c != "||") {
			kept = append(kept, a)
			continue
		}
		if sw == nil {
			sw = &stopwordSet{byPrefix: map[uint16][]string{}}
		}
		for _, w := range a.StopWords {
			sw.add(strings.ToLower(w))
		}
		b := *a
		b.StopWords = nil
		if len(b.Commits)+len(b.Paths)+len(b.Regexes) > 0 {
			kept = append(kept, &b)
		}
	}
	if sw != nil {
		r.Allowlists = kept
	}
	return sw
}

// stopwordSet finds whether a string holds one of a set of words: the
// words are chained by their first two bytes, so a match is one pass over
// the string.
type stopwordSet struct {
	byPrefix map[uint16][]string
	short    []string // words of fewer than two bytes
}

func (s *stopwordSet) add(w string) {
	if len(w) < 2 {
		if !slices.Contains(s.short, w) {
			s.short = append(s.short, w)
		}
		return
	}
	k := uint16(w[0])<<8 | uint16(w[1])
	if !slices.Contains(s.byPrefix[k], w) {
		s.byPrefix[k] = append(s.byPrefix[k], w)
	}
}

// match reports whether secret, lower-cased, holds one of the words, as
// gitleaks' Allowlist.ContainsStopWord does.
func (s *stopwordSet) match(secret string) bool {
	if secret == "" {
		return false
	}
	lower := strings.ToLower(secret)
	for _, w := range s.short {
		if strings.Contains(lower, w) {
			return true
		}
	}
	for i := 0; i+1 < len(lower); i++ {
		for _, w := range s.byPrefix[uint16(lower[i])<<8|uint16(lower[i+1])] {
			if strings.HasPrefix(lower[i:], w) {
				return true
			}
		}
	}
	return false
}

// translateOne runs Translate, which panics on a bad regex (MustCompile).
func translateOne(vc config.ViperConfig) (c config.Config, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("invalid rule: %v", p)
		}
	}()
	return vc.Translate()
}
