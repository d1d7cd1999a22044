// Package observability_test keeps the example Prometheus rules and
// Grafana dashboard honest: they parse, have the fields Prometheus and
// Grafana need, and query only metrics the metrics package registers and
// recording rules the rules file defines, so renaming a metric breaks this
// test instead of silently emptying a panel or an alert.
//
// github.com/prometheus/prometheus/promql/parser is not in the module
// graph, so PromQL is checked structurally (identifiers, balanced
// brackets), not parsed; `promtool check rules prometheus/rules.yml` is
// the full check.
package observability_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/passman-dev/passman/metrics"
)

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// registered gathers the metrics package's registry after touching every
// metric (a vector with no series is not gathered) and returns each
// passman metric's name and type.
func registered(t *testing.T) map[string]string {
	t.Helper()
	m := metrics.New()
	m.ObserveHTTP("/v1/list", "GET", 200, time.Millisecond)
	m.ObserveSecretFetch(metrics.FetchSuccess)
	m.ObserveAuthzDenial("secret.get")
	m.ObserveAuthnFailure(metrics.AuthnToken, "invalid")
	m.ObserveRotation("exec", metrics.RotationSucceeded)
	m.SetStaleSecrets(0)
	m.ObserveAuditWriteFailure()
	m.ObserveCacheRequest(metrics.CacheHit)
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "passman_") {
			names[mf.GetName()] = mf.GetType().String()
		}
	}
	if len(names) < 9 {
		t.Fatalf("only %d passman metrics gathered: %v", len(names), names)
	}
	return names
}

// errorer is the part of testing.T checkExpr uses, so its own test can
// hand it a recorder.
type errorer interface {
	Helper()
	Errorf(format string, args ...any)
}

// recorder is an errorer that remembers failures instead of failing.
type recorder struct{ msgs []string }

func (*recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

var (
	// PromQL string literals: label values may hold anything ("{path}").
	stringLit = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	// Grafana variables ($__rate_interval, ${datasource}).
	grafanaVar = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)
	identifier = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
)

// checkExpr reports what in expr is not a registered metric or a defined
// recording rule: every identifier starting "passman_" (less a histogram
// suffix) must be registered, every one containing ":" recorded.
func checkExpr(t errorer, where, expr string, reg map[string]string, recorded map[string]bool) {
	t.Helper()
	if strings.TrimSpace(expr) == "" {
		t.Errorf("%s: empty expression", where)
		return
	}
	bare := stringLit.ReplaceAllString(expr, `""`)
	bare = grafanaVar.ReplaceAllString(bare, "5m")
	if !balanced(bare) {
		t.Errorf("%s: unbalanced brackets in %q", where, expr)
	}
	used := 0
	for _, id := range identifier.FindAllString(bare, -1) {
		switch {
		case strings.Contains(id, ":"):
			used++
			if !recorded[id] {
				t.Errorf("%s: %s is not a recording rule in rules.yml", where, id)
			}
		case strings.HasPrefix(id, "passman_"):
			used++
			name, suffix := id, ""
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(id, s); ok && reg[base] != "" {
					name, suffix = base, s
				}
			}
			typ, ok := reg[name]
			switch {
			case !ok:
				t.Errorf("%s: %s is not a registered metric", where, id)
			case suffix != "" && typ != "HISTOGRAM" && typ != "SUMMARY":
				t.Errorf("%s: %s on a %s", where, id, typ)
			case suffix == "" && typ == "HISTOGRAM":
				t.Errorf("%s: histogram %s used without _bucket/_sum/_count", where, id)
			}
		}
	}
	if used == 0 && strings.ContainsAny(bare, "({") {
		t.Errorf("%s: %q references no passman metric", where, expr)
	}
}

func balanced(s string) bool {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	for _, r := range s {
		switch r {
		case '(', '[', '{':
			stack = append(stack, r)
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0
}

func loadRules(t *testing.T) (ruleFile, map[string]bool) {
	t.Helper()
	b, err := os.ReadFile("prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true) // a misspelled key would be ignored by Prometheus' loader only to fail there
	if err := dec.Decode(&rf); err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
		}
	}
	return rf, recorded
}

func TestRules(t *testing.T) {
	reg := registered(t)
	rf, recorded := loadRules(t)
	if len(rf.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	groups := map[string]bool{}
	alerts := map[string]rule{}
	validName := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	for _, g := range rf.Groups {
		if g.Name == "" || groups[g.Name] {
			t.Errorf("group name %q empty or repeated", g.Name)
		}
		groups[g.Name] = true
		if g.Interval != "" {
			checkDuration(t, g.Name+" interval", g.Interval)
		}
		if len(g.Rules) == 0 {
			t.Errorf("group %s has no rules", g.Name)
		}
		for i, r := range g.Rules {
			where := g.Name + "[" + r.Record + r.Alert + "]"
			if (r.Record == "") == (r.Alert == "") {
				t.Errorf("%s rule %d: exactly one of record and alert", g.Name, i)
				continue
			}
			checkExpr(t, where, r.Expr, reg, recorded)
			if r.For != "" {
				checkDuration(t, where+" for", r.For)
			}
			if r.Record != "" {
				if !validName.MatchString(r.Record) || !strings.HasPrefix(r.Record, "passman:") || strings.Count(r.Record, ":") != 2 {
					t.Errorf("%s: recording rule name not level:metric:operations", where)
				}
				if len(r.Annotations) != 0 || r.For != "" {
					t.Errorf("%s: a recording rule takes no annotations or for", where)
				}
				continue
			}
			if _, dup := alerts[r.Alert]; dup {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			alerts[r.Alert] = r
			if !slices.Contains([]string{"page", "ticket", "security"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q", where, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs summary and description annotations", where)
			}
		}
	}

	// The SLOs are really encoded: each page-level burn-rate alert pairs a
	// long and a short window at the workbook's factors and the SLO's
	// budget, so editing a target or a window cannot go unnoticed.
	for _, c := range []struct {
		alert string
		parts []string
	}{
		{"PassmanSecretFetchErrorBudgetBurnFast", []string{"14.4 * (1 - 0.9995)", "ratio_rate1h", "ratio_rate5m", "6 * (1 - 0.9995)", "ratio_rate6h", "ratio_rate30m"}},
		{"PassmanSecretFetchLatencyBudgetBurnFast", []string{"14.4 * 0.05", "ratio_rate1h", "ratio_rate5m", "6 * 0.05", "ratio_rate6h", "ratio_rate30m"}},
		{"PassmanSecretFetchP95High", []string{"> 0.2"}},
		{"PassmanRotationFailureBudgetBurnFast", []string{"(1 - 0.99)", "ratio_increase6h", "ratio_increase1h"}},
		{"PassmanRotationFailureBudgetBurnSlow", []string{"(1 - 0.99)"}},
		{"PassmanStaleSecrets", []string{"passman_stale_secrets"}},
		{"PassmanAuditWriteFailures", []string{"passman_audit_write_failures_total"}},
		{"PassmanAuthnFailureSpike", []string{"passman_authn_failures_total"}},
		{"PassmanAuthzDenialSpike", []string{"passman_authz_denials_total"}},
	} {
		r, ok := alerts[c.alert]
		if !ok {
			t.Errorf("alert %s missing", c.alert)
			continue
		}
		for _, p := range c.parts {
			if !strings.Contains(r.Expr, p) {
				t.Errorf("%s: expression lacks %q", c.alert, p)
			}
		}
	}
	// The latency SLI reads the le="0.2" bucket: it must be a real bound.
	if !slices.Contains(metrics.DurationBuckets, 0.2) {
		t.Error("metrics.DurationBuckets lost the 0.2 s bound the latency SLO reads")
	}
}

func checkDuration(t *testing.T, where, s string) {
	t.Helper()
	// Prometheus durations take d, w and y, which time.ParseDuration does
	// not, so match the Prometheus syntax instead.
	re := regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)
	if !re.MatchString(s) {
		t.Errorf("%s: bad duration %q", where, s)
	}
}

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int    `json:"id"`
	Title   string `json:"title"`
	Type    string `json:"type"`
	GridPos struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func TestDashboard(t *testing.T) {
	reg := registered(t)
	_, recorded := loadRules(t)
	b, err := os.ReadFile("grafana/passman.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard needs title, uid and panels: %q %q %d", d.Title, d.UID, len(d.Panels))
	}
	if len(d.Templating.List) == 0 || d.Templating.List[0].Type != "datasource" {
		t.Error("dashboard should pick its Prometheus through a datasource variable")
	}
	ids := map[int]bool{}
	covered := map[string]bool{}
	for _, p := range d.Panels {
		where := p.Title
		if p.Title == "" || p.Type == "" || ids[p.ID] || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %d %q: needs a unique id, title, type and size", p.ID, p.Title)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", where)
		}
		for _, tg := range p.Targets {
			checkExpr(t, where+"/"+tg.RefID, tg.Expr, reg, recorded)
			for name := range reg {
				if strings.Contains(tg.Expr, name) {
					covered[name] = true
				}
			}
			for rec := range recorded {
				if strings.Contains(tg.Expr, rec) {
					covered[rec] = true
				}
			}
		}
	}
	// Every passman metric has a panel (the brief: rate/latency, fetch,
	// denials, authn, rotation, stale, audit, cache).
	for name := range reg {
		if !covered[name] {
			t.Errorf("no panel shows %s", name)
		}
	}
}

// TestCheckExprCatchesMistakes: the checker itself must reject what it is
// there to reject, or the tests above prove nothing.
func TestCheckExprCatchesMistakes(t *testing.T) {
	reg := registered(t)
	recorded := map[string]bool{"passman:x:rate5m": true}
	for _, bad := range []string{
		`rate(passman_secret_fetch_count[5m])`,                 // typo'd name
		`rate(passman_secret_fetch_total_bucket[5m])`,          // suffix on a counter
		`rate(passman_http_request_duration_seconds[5m])`,      // bare histogram
		`passman:y:rate5m > 1`,                                 // undefined recording rule
		`sum(rate(passman_secret_fetch_total[5m])`,             // unbalanced
		`rate(passman_missing_total{route="/v1/{path}"}[5m])`,  // name outside the literal
		`rate(passman_authz_denials_total[$__rate_interval]))`, // unbalanced after substitution
		`rate(up[5m])`, // no passman metric at all
	} {
		rec := &recorder{}
		checkExpr(rec, "x", bad, reg, recorded)
		if len(rec.msgs) == 0 {
			t.Errorf("accepted %q", bad)
		}
	}
	rec := &recorder{}
	checkExpr(rec, "x", `sum(rate(passman_http_request_duration_seconds_bucket{route="/v1/secrets/{path}",le="0.2"}[$__rate_interval])) / passman:x:rate5m`, reg, recorded)
	if len(rec.msgs) != 0 {
		t.Errorf("rejected a good expression: %v", rec.msgs)
	}
}
