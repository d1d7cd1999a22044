package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/server/servertest"
)

// teamPolicy gives each team token read, write and list under its own
// team's prefix, and list on the whole store (which used to be all a
// fingerprint lookup asked for).
const teamPolicy = `package passman.authz

allow if {
	input.subject.kind == "token"
	input.subject.claims.role == "root"
}

allow if {
	input.subject.kind == "token"
	input.action in {"read", "write", "list"}
	startswith(input.path, concat("", [input.subject.claims.team, "/"]))
}

allow if {
	input.subject.kind == "token"
	input.subject.claims.team != ""
	input.action == "list"
	object.get(input, "path", "") == ""
}
`

// teamBValue is team-b's database password: strong enough to export, so
// only authorization keeps it from team-a.
const teamBValue = "teamB-Qx7vK2mP9wL4nR8tZ3yB"

// twoTeams is a server with team-a's and team-b's tokens; team-b's secret
// holds teamBValue.
type twoTeams struct {
	e            *servertest.Env
	a, b         string // tokens
	teamBPrint   string // team-b's full fingerprint
	teamBVersion secret.VersionInfo
}

func newTwoTeams(t *testing.T, o servertest.Options) twoTeams {
	t.Helper()
	o.Policy = teamPolicy
	e := servertest.New(t, o)
	ctx := context.Background()
	tt := twoTeams{e: e}
	for team, tok := range map[string]*string{"team-a": &tt.a, "team-b": &tt.b} {
		s, _, err := e.Local.CreateToken(ctx, secret.TokenRequest{Identity: team + "-ci", Claims: map[string]string{"team": team}})
		if err != nil {
			t.Fatal(err)
		}
		*tok = s
	}
	info, err := e.Local.Put(ctx, "team-b/db", secret.NewValue([]byte(teamBValue)), secret.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tt.teamBPrint, tt.teamBVersion = info.Fingerprint, info
	return tt
}

// plantGuess has team-a store a guess of team-b's value under its own
// path and read back its fingerprint, as any writer can.
func (tt twoTeams) plantGuess(t *testing.T) string {
	t.Helper()
	v := base64.StdEncoding.EncodeToString([]byte(teamBValue))
	if res := send(t, tt.e, "PUT", "/v1/secrets/team-a/guess", tt.a, strings.NewReader(`{"value":"`+v+`"}`)); res.status != 200 {
		t.Fatalf("team-a put: %d %s", res.status, res.body)
	}
	res := send(t, tt.e, "GET", "/v1/describe/team-a/guess", tt.a, nil)
	var s secret.Secret
	if err := json.Unmarshal(res.body, &s); res.status != 200 || err != nil || len(s.Versions) != 1 {
		t.Fatalf("team-a describe: %d %s", res.status, res.body)
	}
	return s.Versions[0].Fingerprint
}

// TestTeamLookupLearnsNothing: team-a, holding a guess of team-b's value
// and its fingerprint, learns nothing about team-b from a lookup: only its
// own copy matches.
func TestTeamLookupLearnsNothing(t *testing.T) {
	t.Parallel()
	tt := newTwoTeams(t, servertest.Options{})
	fp := tt.plantGuess(t)
	if fp != tt.teamBPrint {
		t.Fatal("the guess and team-b's value fingerprint differently")
	}
	res := send(t, tt.e, "GET", "/v1/fingerprints/"+fp, tt.a, nil)
	var got api.FingerprintResponse
	if err := json.Unmarshal(res.body, &got); res.status != 200 || err != nil {
		t.Fatalf("lookup: %d %s", res.status, res.body)
	}
	if len(got.Matches) != 1 || got.Matches[0].Path != "team-a/guess" {
		t.Errorf("team-a's lookup answered %+v; only team-a/guess may match", got.Matches)
	}
	if bytes.Contains(res.body, []byte("team-b")) {
		t.Errorf("team-a's lookup names team-b: %s", res.body)
	}
	// Team-b sees its own and not team-a's.
	res = send(t, tt.e, "GET", "/v1/fingerprints/"+fp, tt.b, nil)
	if err := json.Unmarshal(res.body, &got); err != nil || len(got.Matches) != 1 || got.Matches[0].Path != "team-b/db" {
		t.Errorf("team-b's lookup: %d %s", res.status, res.body)
	}
	// A lookup with no readable match is audited without the fingerprint.
	send(t, tt.e, "GET", "/v1/fingerprints/"+strings.Repeat("ab", 32), tt.a, nil)
	for _, en := range auditEntries(t, tt.e, core.ActionLookup, "team-a-ci") {
		if en.Details["matches"] == "0" && en.Fingerprint != "" {
			t.Errorf("a lookup without readable matches recorded its fingerprint: %+v", en)
		}
	}
}

// TestTeamExportLearnsNothing: team-a's export holds its own secrets only,
// as 24-bit prefixes, no lengths, no paths; weak values are counted, not
// exported; team-b's prefix is refused.
func TestTeamExportLearnsNothing(t *testing.T) {
	t.Parallel()
	tt := newTwoTeams(t, servertest.Options{})
	ctx := context.Background()
	for path, v := range map[string]string{"team-a/api": "teamA-Lm3nB8vC1xZ6qW9eR4tY", "team-a/pin": "4711"} {
		if _, err := tt.e.Local.Put(ctx, path, secret.NewValue([]byte(v)), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"whole store": "/v1/fingerprints/export", "own prefix": "/v1/fingerprints/export?prefix=team-a/"} {
		res := send(t, tt.e, "GET", target, tt.a, nil)
		if res.status != 200 {
			t.Fatalf("%s: %d %s", name, res.status, res.body)
		}
		for _, leak := range []string{tt.teamBPrint[:6], "team-b", `"length"`, "teamA-", "teamB-", `"entries"`} {
			if bytes.Contains(res.body, []byte(leak)) {
				t.Errorf("%s: team-a's export holds %q", name, leak)
			}
		}
		var f fpindex.File
		if err := json.Unmarshal(res.body, &f); err != nil || f.Exported != 1 || f.Withheld != 1 || len(f.Prefixes) != 1 || f.PrefixBits != fpindex.PrefixBits {
			t.Errorf("%s: %d exported, %d withheld, %d prefixes of %d bits, %v", name, f.Exported, f.Withheld, len(f.Prefixes), f.PrefixBits, err)
		}
	}
	for _, target := range []string{"/v1/fingerprints/export?prefix=team-b/", "/v1/fingerprints/export?prefix=team-b"} {
		if res := send(t, tt.e, "GET", target, tt.a, nil); res.status != 403 {
			t.Errorf("%s as team-a: %d %s", target, res.status, res.body)
		}
	}
	if res := send(t, tt.e, "GET", "/v1/fingerprints/export?prefix=../", tt.a, nil); res.status != 400 {
		t.Errorf("export of a bad prefix: %d %s", res.status, res.body)
	}
	// Team-b's own export has its prefix; the audit says what was exported.
	res := send(t, tt.e, "GET", "/v1/fingerprints/export?prefix=team-b/", tt.b, nil)
	if !bytes.Contains(res.body, []byte(`"`+tt.teamBPrint[:6]+`"`)) {
		t.Errorf("team-b's export lacks its prefix: %d", res.status)
	}
	ens := auditEntries(t, tt.e, core.ActionFingerprintExport, "team-b-ci")
	if len(ens) != 1 || ens[0].Details["prefix"] != "team-b/" || ens[0].Details["exported"] != "1" || ens[0].Details["form"] != "shareable" {
		t.Errorf("team-b's export audit: %+v", ens)
	}
}

// TestTeamConfirmLearnsNothing: confirming team-b's fingerprint as team-a
// answers exactly as confirming one nobody has; team-a's own copy is
// confirmed; the audit holds counts only.
func TestTeamConfirmLearnsNothing(t *testing.T) {
	t.Parallel()
	tt := newTwoTeams(t, servertest.Options{})
	unknown := strings.Repeat("cd", 32)
	confirm := func(token string, fps ...string) result {
		b, _ := json.Marshal(api.ConfirmRequest{Fingerprints: fps})
		return send(t, tt.e, "POST", "/v1/fingerprints/confirm", token, bytes.NewReader(b))
	}
	ofTeamB, ofNobody := confirm(tt.a, tt.teamBPrint), confirm(tt.a, unknown)
	if ofTeamB.status != 200 || ofTeamB.status != ofNobody.status || !bytes.Equal(ofTeamB.body, ofNobody.body) {
		t.Errorf("team-b's fingerprint as team-a: %d %s; an unknown one: %d %s", ofTeamB.status, ofTeamB.body, ofNobody.status, ofNobody.body)
	}
	var c fpindex.Confirmation
	if err := json.Unmarshal(confirm(tt.b, tt.teamBPrint, unknown).body, &c); err != nil || len(c.Matches) != 1 || c.Matches[tt.teamBPrint][0].Path != "team-b/db" {
		t.Errorf("team-b's own confirmation: %+v, %v", c, err)
	}
	fp := tt.plantGuess(t)
	res := confirm(tt.a, fp)
	if err := json.Unmarshal(res.body, &c); err != nil || len(c.Matches[fp]) != 1 || c.Matches[fp][0].Path != "team-a/guess" || bytes.Contains(res.body, []byte("team-b")) {
		t.Errorf("team-a's confirmation of its own copy: %s", res.body)
	}
	ens := auditEntries(t, tt.e, core.ActionFingerprintConfirm, "team-a-ci")
	if len(ens) != 3 {
		t.Fatalf("%d confirmation entries by team-a, want 3", len(ens))
	}
	for _, en := range ens {
		if en.Fingerprint != "" || en.Details["asked"] != "1" || en.Path != "" {
			t.Errorf("confirmation entry %+v: counts only", en)
		}
	}
	if ens[0].Details["confirmed"] != "0" || ens[2].Details["confirmed"] != "1" {
		t.Errorf("confirmation counts: %v, %v", ens[0].Details, ens[2].Details)
	}
}

// TestConfirmHostile: malformed, oversized and over-budget confirmations
// are refused before anything is looked up, without quoting the request.
func TestConfirmHostile(t *testing.T) {
	t.Parallel()
	lim := server.NewRateLimiter(0.001, 12, 0)
	e := servertest.New(t, servertest.Options{ConfirmLimiter: lim})
	root := e.Tokens[servertest.Root]
	const canary = "CANARY-confirm-Zq7xk2PeRuTmWv9s"
	many := make([]string, fpindex.MaxConfirm+1)
	for i := range many {
		many[i] = fmt.Sprintf("%064x", i)
	}
	tooMany, _ := json.Marshal(api.ConfirmRequest{Fingerprints: many})
	for name, tc := range map[string]struct {
		body string
		want int
	}{
		"value, not a fingerprint": {`{"fingerprints":["` + canary + `"]}`, 400},
		"upper case":               {`{"fingerprints":["` + strings.Repeat("AB", 32) + `"]}`, 400},
		"short":                    {`{"fingerprints":["abcd"]}`, 400},
		"too many":                 {string(tooMany), 400},
		"oversized body":           {`{"fingerprints":["` + strings.Repeat("a", api.MaxConfirmBody) + `"]}`, 413},
		"unknown field":            {`{"fingerprints":[],"values":["` + canary + `"]}`, 400},
		"not json":                 {canary, 400},
		"empty body":               {"", 400},
		"empty batch":              {`{"fingerprints":[]}`, 200},
	} {
		res := send(t, e, "POST", "/v1/fingerprints/confirm", root, strings.NewReader(tc.body))
		if res.status != tc.want || bytes.Contains(res.body, []byte(canary)) {
			t.Errorf("%s: %d %s, want %d", name, res.status, res.body, tc.want)
		}
	}
	if bytes.Contains(e.Log.Bytes(), []byte(canary)) {
		t.Error("the request log holds the canary")
	}
	// The budget (12, of which 8 spent above: the oversized body never
	// reached the route) runs out; 429 with Retry-After, before the body
	// is read; other identities go on.
	var last result
	for range 5 {
		last = send(t, e, "POST", "/v1/fingerprints/confirm", root, strings.NewReader(`{"fingerprints":[]}`))
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" || last.class() != api.ClassUnavailable {
		t.Errorf("over budget: %d %s (Retry-After %q)", last.status, last.body, last.header.Get("Retry-After"))
	}
	if res := send(t, e, "POST", "/v1/fingerprints/confirm", e.Tokens[servertest.Reader], strings.NewReader(`{"fingerprints":[]}`)); res.status != 200 {
		t.Errorf("another identity: %d %s", res.status, res.body)
	}
	// Refused requests (bad input) are audited as failures, without the input.
	for _, en := range auditEntries(t, e, core.ActionFingerprintConfirm, "root-user") {
		if en.Fingerprint != "" || strings.Contains(fmt.Sprint(en.Details), canary) {
			t.Errorf("confirmation entry holds input: %+v", en)
		}
	}
}

func auditEntries(t *testing.T, e *servertest.Env, action, actor string) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	err := audit.Read(context.Background(), filepath.Join(e.Store.Dir, core.AuditFile), audit.Filter{Action: action, Actor: actor}, func(en audit.Entry) error {
		out = append(out, en)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
