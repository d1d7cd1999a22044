package scanner

import (
	_ "embed"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"

	"github.com/passman-dev/passman/secret"
)

// loadConfig returns the default rules (defaults, see defaultRules),
// extended by the .gitleaks.toml at path when path is not "".
//
// gitleaks' own loader is not used for the merge: it panics on a bad regex
// (regexp.MustCompile), reads the global viper, and counts extensions in a
// package-level variable it never resets, so from the third load in one
// process on, [extend] useDefault is silently ignored. Here every load uses
// a fresh viper, Translate only ever sees a config without [extend], and the
// merge follows config.Config's extend rules.
func loadConfig(path, defaults string) (config.Config, error) {
	def, err := translate(viper.New(), defaults)
	if err != nil {
		return config.Config{}, fmt.Errorf("load gitleaks default rules: %w", err)
	}
	if path == "" {
		return def, nil
	}
	v := viper.New()
	v.SetConfigFile(path)
	v.SetConfigType("toml")
	if err := v.ReadInConfig(); err != nil {
		return config.Config{}, fmt.Errorf("%w: read gitleaks config %s: %v", secret.ErrInvalidArgument, path, err)
	}
	var vc config.ViperConfig
	if err := v.Unmarshal(&vc); err != nil {
		return config.Config{}, fmt.Errorf("%w: gitleaks config %s: %v", secret.ErrInvalidArgument, path, err)
	}
	if err := validateRegexes(&vc); err != nil {
		return config.Config{}, fmt.Errorf("%w: gitleaks config %s: %v", secret.ErrInvalidArgument, path, err)
	}
	ext := vc.Extend
	if ext.Path != "" || ext.URL != "" {
		return config.Config{}, fmt.Errorf("%w: gitleaks config %s: [extend] path and url are not supported; only useDefault", secret.ErrInvalidArgument, path)
	}
	vc.Extend = config.Extend{}
	// Allowlists targeting rules are attached after the merge, since they
	// may name default rules that Translate would not find.
	var targeted []targetedAllowlist
	for i := 0; i < len(vc.Allowlists); i++ {
		if a := vc.Allowlists[i]; len(a.TargetRules) > 0 {
			one := config.ViperConfig{Allowlists: vc.Allowlists[i : i+1 : i+1]}
			ids := a.TargetRules
			a.TargetRules = nil
			c, err := one.Translate()
			if err != nil {
				return config.Config{}, fmt.Errorf("%w: gitleaks config %s: %v", secret.ErrInvalidArgument, path, err)
			}
			targeted = append(targeted, targetedAllowlist{ids, c.Allowlists[0]})
			vc.Allowlists = append(vc.Allowlists[:i], vc.Allowlists[i+1:]...)
			i--
		}
	}
	user, err := vc.Translate()
	if err != nil {
		return config.Config{}, fmt.Errorf("%w: gitleaks config %s: %v", secret.ErrInvalidArgument, path, err)
	}
	user.Extend = ext
	if ext.UseDefault {
		extend(&user, def, ext.DisabledRules)
	}
	for _, t := range targeted {
		for _, id := range t.rules {
			r, ok := user.Rules[id]
			if !ok {
				return config.Config{}, fmt.Errorf("%w: gitleaks config %s: [[allowlists]] target rule %q does not exist", secret.ErrInvalidArgument, path, id)
			}
			r.Allowlists = append(r.Allowlists, t.allowlist)
			user.Rules[id] = r
		}
	}
	user.Path = ""
	return user, nil
}

// Rule sets for Options.Rules.
const (
	// RulesPassman is gitleaks' default rules and passman's own
	// (rules/passman.toml): passwords in well-known configuration files,
	// crackable password hashes, framework keys, credentials in URIs.
	RulesPassman = "passman"
	// RulesGitleaks is gitleaks' default rules alone: gitleaks' findings
	// exactly.
	RulesGitleaks = "gitleaks"
)

// RuleSets lists the values Options.Rules takes.
var RuleSets = []string{RulesPassman, RulesGitleaks}

//go:generate go test -run "^TestRuleIndex$" -update-index .

//go:embed rules/passman.toml
var passmanRules string

// defaultRules returns the TOML of a rule set. passman's rules are
// appended as further [[rules]] tables: rules/passman.toml has no
// top-level keys, which would land in gitleaks' last table.
func defaultRules(set string) (string, error) {
	switch set {
	case "", RulesPassman:
		return config.DefaultConfig + "\n" + passmanRules, nil
	case RulesGitleaks:
		return config.DefaultConfig, nil
	}
	return "", fmt.Errorf("%w: unknown rule set %q (want %s)", secret.ErrInvalidArgument, set, strings.Join(RuleSets, " or "))
}

// defaultSources returns a rule set's rules files with their indexes
// (rules_index.go), in defaultRules' order.
func defaultSources(set string) ([]ruleSource, error) {
	gitleaks := ruleSource{config.DefaultConfig, &gitleaksRulesIndex}
	switch set {
	case "", RulesPassman:
		return []ruleSource{gitleaks, {passmanRules, &passmanRulesIndex}}, nil
	case RulesGitleaks:
		return []ruleSource{gitleaks}, nil
	}
	return nil, fmt.Errorf("%w: unknown rule set %q (want %s)", secret.ErrInvalidArgument, set, strings.Join(RuleSets, " or "))
}

type targetedAllowlist struct {
	rules     []string
	allowlist *config.Allowlist
}

// translate parses a TOML config without [extend] into a Config.
func translate(v *viper.Viper, toml string) (config.Config, error) {
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(toml)); err != nil {
		return config.Config{}, err
	}
	var vc config.ViperConfig
	if err := v.Unmarshal(&vc); err != nil {
		return config.Config{}, err
	}
	return vc.Translate()
}

// validateRegexes compiles every regex in vc, so that a bad one is an error
// naming its rule instead of a panic inside Translate. gitleaks' default
// build uses the standard library's regexp, as this does.
func validateRegexes(vc *config.ViperConfig) error {
	check := func(where, expr string) error {
		if expr == "" {
			return nil
		}
		if _, err := regexp.Compile(expr); err != nil {
			return fmt.Errorf("%s: invalid regex: %v", where, err)
		}
		return nil
	}
	checkAll := func(where string, exprs []string) error {
		for _, e := range exprs {
			if err := check(where, e); err != nil {
				return err
			}
		}
		return nil
	}
	for _, r := range vc.Rules {
		where := fmt.Sprintf("rule %q", r.ID)
		if err := check(where+" regex", r.Regex); err != nil {
			return err
		}
		if err := check(where+" path", r.Path); err != nil {
			return err
		}
		lists := r.Allowlists
		if r.AllowList != nil {
			lists = append(lists[:len(lists):len(lists)], r.AllowList)
		}
		for _, a := range lists {
			if err := checkAll(where+" allowlist regexes", a.Regexes); err != nil {
				return err
			}
			if err := checkAll(where+" allowlist paths", a.Paths); err != nil {
				return err
			}
		}
	}
	global := vc.Allowlists
	//lint:ignore SA1019 gitleaks still honours the deprecated [allowlist], so it is validated too.
	if a := vc.AllowList; a != nil {
		global = append(global[:len(global):len(global)], a)
	}
	for _, a := range global {
		if err := checkAll("global allowlist regexes", a.Regexes); err != nil {
			return err
		}
		if err := checkAll("global allowlist paths", a.Paths); err != nil {
			return err
		}
	}
	return nil
}

// extend merges base (the default rules) into c the way gitleaks'
// config.Config.extend does: rules c lacks are added; for rules both have,
// c's non-zero fields win and lists are concatenated; disabled rules are
// dropped; global allowlists are appended.
func extend(c *config.Config, base config.Config, disabled []string) {
	skip := map[string]bool{}
	for _, id := range disabled {
		skip[id] = true
	}
	for id, b := range base.Rules {
		if skip[id] {
			continue
		}
		if cur, ok := c.Rules[id]; ok {
			if cur.Description != "" {
				b.Description = cur.Description
			}
			if cur.Entropy != 0 {
				b.Entropy = cur.Entropy
			}
			if cur.SecretGroup != 0 {
				b.SecretGroup = cur.SecretGroup
			}
			if cur.Regex != nil {
				b.Regex = cur.Regex
			}
			if cur.Path != nil {
				b.Path = cur.Path
			}
			b.Tags = append(append([]string(nil), b.Tags...), cur.Tags...)
			b.Keywords = append(append([]string(nil), b.Keywords...), cur.Keywords...)
			b.Allowlists = append(append(b.Allowlists[:0:0], b.Allowlists...), cur.Allowlists...)
		} else {
			c.OrderedRules = append(c.OrderedRules, id)
		}
		for _, k := range b.Keywords {
			c.Keywords[k] = struct{}{}
		}
		c.Rules[id] = b
	}
	c.Allowlists = append(c.Allowlists, base.Allowlists...)
	sort.Strings(c.OrderedRules)
}
