package api_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/secret"
)

// TestStatusCoversEveryClass: every class secret names has a deliberate
// status, and a client maps the common statuses back to the same class.
func TestStatusCoversEveryClass(t *testing.T) {
	want := map[string]int{
		"invalid_path": 400, "invalid_argument": 400, "unauthenticated": 401,
		"permission_denied": 403, "not_found": 404, "conflict": 409,
		"deleted": 410, "destroyed": 410, "failed_precondition": 412,
		"too_large": 413, "audit": 503, "tampered": 500, "corrupt": 500,
		"key": 500, "internal": 500, api.ClassUnavailable: 503,
	}
	sentinels := []error{
		secret.ErrInvalidPath, secret.ErrInvalidArgument, secret.ErrTooLarge, secret.ErrNotFound,
		secret.ErrConflict, secret.ErrDeleted, secret.ErrDestroyed, secret.ErrPrecondition,
		secret.ErrPermissionDenied, secret.ErrUnauthenticated, secret.ErrKey, secret.ErrCorrupt,
		secret.ErrAudit, secret.ErrTampered, errors.New("other"),
	}
	for _, s := range sentinels {
		class := secret.Class(s)
		code, ok := want[class]
		if !ok {
			t.Errorf("class %q has no expected status", class)
			continue
		}
		if got := api.Status(class); got != code {
			t.Errorf("Status(%q) = %d, want %d", class, got, code)
		}
	}
	for _, class := range []string{"invalid_argument", "unauthenticated", "permission_denied", "not_found", "conflict", "failed_precondition", "too_large", api.ClassUnsupportedMediaType} {
		if got := api.ClassForStatus(api.Status(class)); got != class {
			t.Errorf("ClassForStatus(Status(%q)) = %q", class, got)
		}
	}
}

func TestRoutes(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range api.Routes {
		key := r.Method + " " + r.Path
		if seen[key] {
			t.Errorf("two routes for %s", key)
		}
		seen[key] = true
		got, tail, _ := api.Match(r.Method, r.URL("app/db/password"))
		if got == nil || got.Name != r.Name {
			t.Errorf("%s does not match its own URL", r.Name)
		}
		if r.Tail == api.TailPath && tail != "app/db/password" {
			t.Errorf("%s: tail %q", r.Name, tail)
		}
		// A read is a GET, or a POST when it carries a value (compare),
		// which must not travel in a URL; either way it changes nothing.
		if r.ReadsSecret && (r.Method != http.MethodGet && r.Name != api.RouteCompare.Name || !r.Idempotent) {
			t.Errorf("%s reads a secret with %s", r.Name, r.Method)
		}
	}
	if r, _, allowed := api.Match(http.MethodPost, "/v1/secrets/a"); r != nil || len(allowed) != 3 {
		t.Errorf("POST /v1/secrets/a: %v, allowed %v", r, allowed)
	}
	if r, _, allowed := api.Match(http.MethodGet, "/v1/nope"); r != nil || len(allowed) != 0 {
		t.Errorf("GET /v1/nope: %v, allowed %v", r, allowed)
	}
}

func TestQueryRoundTrip(t *testing.T) {
	for _, sel := range []secret.Selector{{}, {Version: 3}, {Stage: secret.StagePending}} {
		got, err := api.DecodeSelector(api.EncodeSelector(sel))
		if err != nil || got != sel {
			t.Errorf("selector %v: %v, %v", sel, got, err)
		}
	}
	lo := secret.ListOptions{Prefix: "prod/", After: "prod/a", Limit: 7, WithMetadata: true}
	if got, err := api.DecodeList(api.EncodeList(lo)); err != nil || got != lo {
		t.Errorf("list options: %+v, %v", got, err)
	}
	f := audit.Filter{Path: "a/b", PathPrefix: "a/", Actor: "x", Action: "secret.get", Outcome: audit.OutcomeDenied,
		Since: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Until: time.Date(2026, 2, 2, 3, 4, 5, 0, time.UTC)}
	got, limit, err := api.DecodeAuditQuery(api.EncodeAuditQuery(f, 9))
	if err != nil || limit != 9 || !cmp.Equal(got, f) {
		t.Errorf("audit filter: %+v %d %v", got, limit, err)
	}
}
