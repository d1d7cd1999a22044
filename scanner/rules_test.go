package scanner

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
)

// lazySamples reach rules through plain keywords, through decodings only
// (base64, hex, percent-encoding, nested) and through none.
func lazySamples() map[string]string {
	aws := "AKIA" + "QYLPMN5HHHFPZAM2"
	pat := "ghp_" + strings.Repeat("aB3dE5fG7h", 4)[:36]
	slack := "xoxb-" + "1234567890-1234567890123-" + strings.Repeat("aB3dE5fG7h", 3)[:24]
	b64 := base64.StdEncoding.EncodeToString([]byte("token=" + pat))
	return map[string]string{
		"plain.env":   "AWS_ACCESS_KEY_ID=" + aws + "\nSLACK=" + slack + "\napi_key = \"Zx81mQ7vLp02RtY5wK9e\"\n",
		"b64.txt":     "blob: " + b64 + "\n",
		"hex.txt":     "h = " + hex.EncodeToString([]byte("key "+aws)) + "\n",
		"pct.txt":     "u = " + url.QueryEscape("secret="+slack) + "\n",
		"nested.txt":  "n: " + base64.StdEncoding.EncodeToString([]byte(b64)) + "\n",
		"nothing.txt": "just prose, no keys here\n",
		"empty":       "",
	}
}

// TestLazyRulesMatchAll checks that the rules compiled for some content
// find exactly what all the rules find in it.
func TestLazyRulesMatchAll(t *testing.T) {
	ctx := context.Background()
	lazy, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	full := gitleaksTranslated(t)
	total := 0
	samples := lazySamples()
	samples["stopword.go"] = stopwordSample
	for name, content := range samples {
		got, _, err := lazy.ScanReader(ctx, name, strings.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := full.ScanReader(ctx, name, strings.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		total += len(want)
		if !slices.EqualFunc(got, want, func(a, b Finding) bool { return a.Fingerprint == b.Fingerprint && a.StartColumn == b.StartColumn }) {
			t.Errorf("%s: lazy rules found %+v, all rules %+v", name, got, want)
		}
	}
	if total < 5 {
		t.Fatalf("the samples found only %d secrets: they test nothing", total)
	}
}

// gitleaksTranslated is a Scanner with passman's default rules as
// gitleaks' own loader translates them, all at once.
func gitleaksTranslated(t *testing.T) *Scanner {
	t.Helper()
	src, err := defaultRules(RulesPassman)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig("", src)
	if err != nil {
		t.Fatal(err)
	}
	return &Scanner{rules: eagerBook(cfg), maxSize: DefaultMaxFileSize}
}

// stopwordSample's secret would be generic-api-key's but for the stop
// word "admin" in it.
const stopwordSample = "api_key = \"Zq8adminXv7Lp3RtY5wK9e\"\n"

// TestSplitStopwords checks that generic-api-key's stop words, matched
// outside gitleaks' allowlist (splitStopwords), drop what the allowlist
// drops and nothing else.
func TestSplitStopwords(t *testing.T) {
	ctx := context.Background()
	lazy, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	full := gitleaksTranslated(t)
	for _, tc := range []struct {
		content string
		want    int
	}{
		{stopwordSample, 0},
		{strings.Replace(stopwordSample, "admin", "q7x9z", 1), 1},
		{strings.ToUpper(stopwordSample[:10]) + strings.Replace(stopwordSample[10:], "admin", "ADMIN", 1), 0},
	} {
		for name, s := range map[string]*Scanner{"lazy": lazy, "gitleaks' translation": full} {
			got, _, err := s.ScanReader(ctx, "config.go", strings.NewReader(tc.content))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Errorf("%s: %q: %d findings %+v, want %d", name, tc.content, len(got), got, tc.want)
			}
		}
	}
	sw := lazy.rules.stopwordsFor("generic-api-key")
	if sw == nil {
		t.Fatal("generic-api-key's stop words were not split")
	}
	cfg, err := lazy.rules.forRules(map[string]bool{"generic-api-key": true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.Rules["generic-api-key"].Allowlists {
		if len(a.StopWords) > 0 || len(a.Regexes) == 0 {
			t.Errorf("allowlist left with %d stop words, %d regexes", len(a.StopWords), len(a.Regexes))
		}
	}
	for _, c := range []struct {
		s    string
		want bool
	}{{"", false}, {"xxADMINxx", true}, {"admi", false}, {"zzz000000", true}, {"q7x9z", false}} {
		if got := sw.match(c.s); got != c.want {
			t.Errorf("match(%q) = %v, want %v", c.s, got, c.want)
		}
	}
}

// TestLazyRulesCompileLittle checks that small content compiles only the
// rules it can reach.
func TestLazyRulesCompileLittle(t *testing.T) {
	b := lazyBook(gitleaksSource())
	cfg, err := b.forContent(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) > 3 {
		t.Errorf("empty content compiled %d rules", len(cfg.Rules))
	}
	if len(cfg.Keywords) != 0 {
		t.Errorf("empty content's rules have %d keywords", len(cfg.Keywords))
	}
	cfg, err = b.forContent([]byte("AKIA" + "QYLPMN5HHHFPZAM2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Rules["aws-access-token"]; !ok || len(cfg.Rules) > 10 {
		t.Errorf("an AWS key compiled %d rules (aws-access-token: %v)", len(cfg.Rules), ok)
	}
	all, err := b.all()
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Rules) < 200 || len(all.Keywords) < 200 {
		t.Errorf("all() has %d rules, %d keywords", len(all.Rules), len(all.Keywords))
	}
}

func gitleaksSource() ruleSource { return ruleSource{config.DefaultConfig, &gitleaksRulesIndex} }

// TestDefaultRulesDecodeAsViper checks lazyBook's decoding against
// gitleaks' own (viper's) on the default rules.
func TestDefaultRulesDecodeAsViper(t *testing.T) {
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(config.DefaultConfig)); err != nil {
		t.Fatal(err)
	}
	var want config.ViperConfig
	if err := v.Unmarshal(&want); err != nil {
		t.Fatal(err)
	}
	got, err := lazyBook(gitleaksSource()).decodeAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Rules) < 200 || !reflect.DeepEqual(got, want) {
		t.Errorf("the default rules decode differently from viper's decoding (%d rules, %d)", len(got.Rules), len(want.Rules))
	}
	// passman's set too, and each of its rules compiles.
	src, err := defaultRules(RulesPassman)
	if err != nil {
		t.Fatal(err)
	}
	v = viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(src)); err != nil {
		t.Fatal(err)
	}
	want = config.ViperConfig{}
	if err := v.Unmarshal(&want); err != nil {
		t.Fatal(err)
	}
	sources, err := defaultSources(RulesPassman)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = lazyBook(sources...).decodeAll(); err != nil || !reflect.DeepEqual(got, want) || len(got.Rules) <= 222 {
		t.Errorf("passman's rules decode differently from viper's decoding (%d rules, %v)", len(got.Rules), err)
	}
	if _, err := lazyBook(sources...).all(); err != nil {
		t.Error(err)
	}
}

func TestForRules(t *testing.T) {
	ids := map[string]bool{"aws-access-token": true, "no-such-rule": true}
	lazy, err := lazyBook(gitleaksSource()).forRules(ids)
	if err != nil {
		t.Fatal(err)
	}
	all, err := lazyBook(gitleaksSource()).all()
	if err != nil {
		t.Fatal(err)
	}
	eager, err := eagerBook(all).forRules(ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []config.Config{lazy, eager} {
		if len(c.Rules) != 1 || c.OrderedRules[0] != "aws-access-token" || len(c.Keywords) == 0 {
			t.Errorf("forRules = %v rules %v, keywords %v", len(c.Rules), c.OrderedRules, c.Keywords)
		}
	}
}

// TestMarkASCII checks that marking ASCII text without lowering a copy
// of it marks exactly the rules the lowered copy does, and that text
// outside ASCII (whose lowering is not byte by byte) is left to the
// lowered copy.
func TestMarkASCII(t *testing.T) {
	sources, err := defaultSources(RulesPassman)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lazyBook(sources...).load()
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"", "a", "TOKEN", "x-Api-KEY: 1", "AWS_SECRET_ACCESS_KEY=", "password: hunter2 Bearer ", "ghp_", "sk-", "to"}
	for _, s := range lazySamples() {
		texts = append(texts, s, strings.ToUpper(s))
	}
	for _, text := range texts {
		got, want := make([]bool, len(l.rules)), make([]bool, len(l.rules))
		if !l.markASCII(got, text) {
			t.Fatalf("markASCII(%q) refused ASCII", text)
		}
		l.markWords(want, strings.ToLower(text))
		if !slices.Equal(got, want) {
			t.Errorf("markASCII(%q) marked other rules than markWords", text)
		}
	}
	// "\u212a" (the Kelvin sign) lowers to "k": "TO\u212aEN" holds
	// "token" once lowered.
	for _, text := range []string{"TO\u212aEN", "é token"} {
		if l.markASCII(make([]bool, len(l.rules)), text) {
			t.Errorf("markASCII(%q) accepted text outside ASCII", text)
		}
	}
	kelvin, plain := make([]bool, len(l.rules)), make([]bool, len(l.rules))
	l.mark(kelvin, []byte("TO\u212aEN"))
	l.markWords(plain, "token")
	if !slices.Contains(plain, true) {
		t.Fatal("no rule has the keyword token: the test tests nothing")
	}
	for i, p := range plain {
		if p && !kelvin[i] {
			t.Fatalf("mark missed rule %s, whose keyword the lowered text holds", l.rules[i].id)
		}
	}
}
