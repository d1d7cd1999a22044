package scanner

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/report"
)

// TestPickerMatchesAllRules scans a pull request whose commits reach more
// rules one after another (plain keywords, then decodings only), so that
// the picker builds a new Detector several times, and checks that it finds
// exactly what all the rules find, commit by commit; then again with
// every rule taken from the fifth commit on.
func TestPickerMatchesAllRules(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", name)
		git("-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-q", "-m", name)
	}
	git("init", "-q")
	commit("README", "base\n")
	base := git("rev-parse", "HEAD")
	samples := lazySamples()
	samples["stopword.go"] = stopwordSample
	names := []string{"nothing.txt", "plain.env", "b64.txt", "stopword.go", "hex.txt", "nested.txt", "pct.txt"}
	for i, name := range names {
		commit(name, samples[name])
		// The same lines again, in another file, after other rules were
		// added: found again with a larger Detector.
		commit(fmt.Sprintf("again%d-%s", i, name), samples[name])
	}
	ctx := context.Background()
	want, _, err := gitleaksTranslated(t).ScanGit(ctx, dir, GitOptions{Range: base + "..HEAD"})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 10 {
		t.Fatalf("all rules found only %d secrets: the test tests nothing", len(want))
	}
	same := func(a, b Finding) bool {
		return a.Fingerprint == b.Fingerprint && a.Commit == b.Commit && a.StartLine == b.StartLine && a.StartColumn == b.StartColumn && a.EndColumn == b.EndColumn
	}
	for _, max := range []int{smallScan, 2 * (len(samples["nothing.txt"]) + len(samples["plain.env"]))} {
		t.Run(fmt.Sprint("max", max), func(t *testing.T) {
			defer func(old int) { pickMax = old }(pickMax)
			pickMax = max
			s, err := New(Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := s.ScanGit(ctx, dir, GitOptions{Range: base + "..HEAD"})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, want, same) {
				t.Errorf("picked rules found\n%+v\nall rules\n%+v", got, want)
			}
		})
	}
}

// TestPrewarm compiles the rules nearly every change reaches, in both
// default rule sets: a renamed rule would silently leave the first diff
// of every pull request to compile it.
func TestPrewarm(t *testing.T) {
	for _, set := range RuleSets {
		src, err := defaultSources(set)
		if err != nil {
			t.Fatal(err)
		}
		b := lazyBook(src...)
		b.prewarm()
		l, err := b.load()
		if err != nil {
			t.Fatal(err)
		}
		compiled := map[string]bool{}
		for i, r := range l.rules {
			if l.compiled[i] != nil {
				compiled[r.id] = true
			}
		}
		for _, id := range commonRules {
			if !compiled[id] {
				t.Errorf("%s: %s not compiled", set, id)
			}
		}
		if len(compiled) > len(commonRules)+len(l.keywordless) {
			t.Errorf("%s: %d rules compiled, want at most the common and keywordless ones", set, len(compiled))
		}
	}
}

// TestSharedTrie checks that a Detector sharing the trie of every rule's
// keywords finds, with a part of the rules, what a Detector built of that
// part alone finds, decoding or not, in content that holds other rules'
// keywords too.
func TestSharedTrie(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := s.newRulePicker(ctx, nil)
	if err != nil || p == nil {
		t.Fatalf("newRulePicker: %v", err)
	}
	samples := lazySamples()
	var all []byte
	for _, name := range slices.Sorted(maps.Keys(samples)) {
		all = append(all, samples[name]...)
	}
	found := 0
	for _, name := range slices.Sorted(maps.Keys(samples)) {
		// The rules one sample reaches, run over every sample.
		cfg, err := s.rules.forContent([]byte(samples[name]))
		if err != nil {
			t.Fatal(err)
		}
		for _, decode := range []bool{true, false} {
			own := s.detector(ctx, cfg)
			if !decode {
				own.MaxDecodeDepth = 0
			}
			//lint:ignore SA1019 DetectContext takes detect.Fragment in v8.
			frag := detect.Fragment{Raw: string(all), FilePath: "f.txt"}
			// In the order of a map of the rules: compared sorted.
			key := func(f report.Finding) string {
				return fmt.Sprintf("%s %d %d %d %d %s", f.RuleID, f.StartLine, f.StartColumn, f.EndLine, f.EndColumn, f.Secret)
			}
			byKey := func(a, b report.Finding) int { return strings.Compare(key(a), key(b)) }
			want := slices.SortedFunc(slices.Values(own.DetectContext(ctx, frag)), byKey)
			got := slices.SortedFunc(slices.Values(p.sharedTrie(cfg, decode).DetectContext(ctx, frag)), byKey)
			found += len(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s, decode %v: shared trie found\n%+v\nown trie\n%+v", name, decode, got, want)
			}
		}
	}
	if found == 0 {
		t.Fatal("nothing found: the test tests nothing")
	}
}
