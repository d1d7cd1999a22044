package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/server/servertest"
)

// leakBody is a respond request for version v of each path.
func leakBody(v int, paths ...string) string {
	leaks := make([]string, len(paths))
	for i, p := range paths {
		leaks[i] = fmt.Sprintf(`{"path":%q,"version":%d,"rule":"passman-managed","file":"app.env","line":%d,"commit":"0123456789abcdef"}`, p, v, i+1)
	}
	return `{"leaks":[` + strings.Join(leaks, ",") + `]}`
}

func respondResponse(t *testing.T, r result) api.RespondResponse {
	t.Helper()
	var out api.RespondResponse
	if err := json.Unmarshal(r.body, &out); r.status != 200 || err != nil {
		t.Fatalf("respond: %d %s (%v)", r.status, r.body, err)
	}
	return out
}

// TestRespondOverHTTP: the server responds to leaks with its own respond
// policy, each step audited as the token's identity; a failure is that
// leak's result, and a caller who may not read the secret changes nothing.
func TestRespondOverHTTP(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	ctx := context.Background()
	rotated(t, e, "app/db")
	seed(t, e, "app/plain", 1)
	root := e.Tokens[servertest.Root]

	// The reader may describe app/ but not write: the rotation is refused
	// at its first write, and the answer says so.
	out := respondResponse(t, send(t, e, "POST", "/v1/respond", e.Tokens[servertest.Reader], strings.NewReader(leakBody(1, "app/db"))))
	if out.Error == nil || out.Error.Class != "permission_denied" || len(out.Results) != 1 || out.Results[0].Error == "" {
		t.Errorf("respond as reader: %+v", out)
	}
	if s, err := e.Local.Describe(ctx, "app/db"); err != nil || s.CurrentVersion != 1 {
		t.Fatalf("after a refused response: %+v, %v", s, err)
	}

	out = respondResponse(t, send(t, e, "POST", "/v1/respond", root, strings.NewReader(leakBody(1, "app/db", "app/missing", "app/db", "app/plain"))))
	if len(out.Results) != 4 {
		t.Fatalf("%d results for 4 leaks: %+v", len(out.Results), out)
	}
	db := out.Results[0]
	if db.Path != "app/db" || db.Version != 1 || db.Rotation == nil || db.Rotation.To != 2 || !db.Revoked || db.Error != "" {
		t.Errorf("app/db: %+v", db)
	}
	if got := strings.Join(db.Done, "; "); !strings.HasPrefix(got, "rotated to v2; revoked v1; notify: ") {
		t.Errorf("app/db done: %s", got)
	}
	if r := out.Results[1]; r.Path != "app/missing" || !strings.Contains(r.Error, "not found") {
		t.Errorf("app/missing: %+v", r)
	}
	if r := out.Results[2]; r.Rotation == nil || r.Rotation.To != 2 {
		t.Errorf("the repeated leak was responded to again: %+v", r)
	}
	if r := out.Results[3]; !strings.Contains(r.Error, "no rotation configured") || !strings.HasPrefix(strings.Join(r.Done, ""), "rotation failed: ") {
		t.Errorf("app/plain: %+v", r)
	}
	if out.Error == nil || out.Error.Class != "not_found" {
		t.Errorf("first failure: %+v", out.Error)
	}
	s, err := e.Local.Describe(ctx, "app/db")
	if err != nil || s.CurrentVersion != 2 || s.Metadata.RotationStatus == nil || !strings.HasPrefix(s.Metadata.RotationStatus.Trigger, "leak: app.env:1 in commit 0123456789ab; policy: ") {
		t.Fatalf("after the response: %+v, %v", s, err)
	}
	actions := auditedActions(t, e, "app/db", "root-user")
	for _, a := range []string{core.ActionDescribe, core.ActionPut, core.ActionStage, core.ActionGet} {
		if !actions[a] {
			t.Errorf("no %s of app/db by root-user on the audit log (have %v)", a, actions)
		}
	}

	// The same leak again: the version is no longer current.
	out = respondResponse(t, send(t, e, "POST", "/v1/respond", root, strings.NewReader(leakBody(1, "app/db"))))
	if out.Error != nil || out.Results[0].Rotation != nil || !strings.HasPrefix(strings.Join(out.Results[0].Done, ""), "notify: v1 of app/db leaked") {
		t.Errorf("second response: %+v", out)
	}
}

// TestRespondHostile: malformed, oversized and invalid respond requests
// are refused whole, before anything is done, without quoting what they
// held; no field can carry a value.
func TestRespondHostile(t *testing.T) {
	t.Parallel()
	h, e := envTarget(t)
	rotated(t, e, "app/db")
	many := make([]string, api.MaxRespondLeaks+1)
	for i := range many {
		many[i] = "app/db"
	}
	leak := func(extra string) string {
		return `{"leaks":[{"path":"app/db","version":1,"rule":"passman-managed","file":"app.env"` + extra + `}]}`
	}
	var res []result
	for _, c := range []struct {
		name, body string
		status     int
		class      string
	}{
		{"malformed", `{"leaks":[{"path":`, 400, "invalid_argument"},
		{"not an object", `[]`, 400, "invalid_argument"},
		{"empty", ``, 400, "invalid_argument"},
		{"no leaks", `{"leaks":[]}`, 400, "invalid_argument"},
		{"trailing data", leak("") + `{}`, 400, "invalid_argument"},
		{"too many", leakBody(1, many...), 400, "invalid_argument"},
		{"traversing path", `{"leaks":[{"path":"app/../` + hostileCanary + `","version":1}]}`, 400, "invalid_path"},
		{"absolute path", `{"leaks":[{"path":"/app/db","version":1}]}`, 400, "invalid_path"},
		{"value as path", `{"leaks":[{"path":"` + hostileCanary + ` x","version":1}]}`, 400, "invalid_path"},
		{"version 0", `{"leaks":[{"path":"app/db","version":0}]}`, 400, "invalid_argument"},
		{"version as text", `{"leaks":[{"path":"app/db","version":"` + hostileCanary + `"}]}`, 400, "invalid_argument"},
		{"a secret field", leak(`,"secret":"` + hostileCanary + `"`), 400, "invalid_argument"},
		{"a match field", leak(`,"match":"` + hostileCanary + `"`), 400, "invalid_argument"},
		{"a finding map", leak(`,"finding":{"secret":"` + hostileCanary + `"}`), 400, "invalid_argument"},
		{"a where", leak(`,"where":"` + hostileCanary + `"`), 400, "invalid_argument"},
		{"commit not hex", leak(`,"commit":"` + hostileCanary + `"`), 400, "invalid_argument"},
		{"control characters", leak(`,"author":"\u0000` + hostileCanary + `"`), 400, "invalid_argument"},
		{"long file", `{"leaks":[{"path":"app/db","version":1,"file":"` + strings.Repeat("f", 5000) + hostileCanary + `"}]}`, 400, "invalid_argument"},
		{"oversized", `{"leaks":[{"path":"app/db","version":1,"file":"` + strings.Repeat("A", 3<<20) + `"}]}`, 413, "too_large"},
	} {
		r := h.do(t, "POST", "/v1/respond", nil, strings.NewReader(c.body))
		if r.status != c.status || r.class() != c.class {
			t.Errorf("%s: %d %.300s, want %d %s", c.name, r.status, r.body, c.status, c.class)
		}
		res = append(res, r)
	}
	h.noCanary(t, res)
	if s, err := e.Local.Describe(context.Background(), "app/db"); err != nil || s.CurrentVersion != 1 || len(s.Versions) != 1 {
		t.Errorf("a refused request changed app/db: %+v, %v", s, err)
	}
	b, err := os.ReadFile(filepath.Join(e.Store.Dir, core.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), hostileCanary) {
		t.Error("the audit log holds the canary")
	}
}
