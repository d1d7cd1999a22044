package testacc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/provider"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server/servertest"
)

// TestLocalStore: the provider on a local store, with no server: create,
// update, import, drift, destroy. The store is opened around the
// provider's operations, so the test opens it in between.
func TestLocalStore(t *testing.T) {
	needTerraform(t)
	dir := localStore(t)
	stores := provider.NewLocalStores()
	t.Cleanup(func() {
		if err := stores.Close(); err != nil {
			t.Error(err)
		}
	})
	f := factories(provider.Options{Getenv: func(string) string { return "" }, Stores: stores})
	cfg := func(desc, v string) string {
		return fmt.Sprintf(`
provider "passman" {
  store = %q
}

resource "passman_secret" "g" {
  path        = "local/gen"
  owner       = "me"
  description = %q
  generate {}
}

resource "passman_secret" "w" {
  path        = "local/wo"
  owner       = "me"
  description = "write-only"
  value_wo    = %q
}

resource "passman_secret" "stub" {
  path        = "local/stub"
  owner       = "me"
  description = "the value is put by hand"
}
`, dir, desc, v)
	}
	withStore := func(fn func(context.Context, *core.Local) error) error {
		l := openLocal(t, dir)
		defer l.Close()
		return fn(context.Background(), l)
	}
	// Drift made on the store as the CLI would, and the stub's value put
	// by hand.
	outOfBand := func() {
		err := withStore(func(ctx context.Context, l *core.Local) error {
			if _, err := l.Put(ctx, "local/wo", secret.NewValue([]byte("by hand")), secret.PutOptions{}); err != nil {
				return err
			}
			_, err := l.Put(ctx, "local/stub", secret.NewValue([]byte("stub value")), secret.PutOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: f,
		TerraformVersionChecks:   writeOnly,
		Steps: []resource.TestStep{
			{Config: cfg("first", "local-one")},
			{Config: cfg("second", "local-one"), Check: func(*terraform.State) error {
				return withStore(func(ctx context.Context, l *core.Local) error {
					s, err := l.Describe(ctx, "local/gen")
					if err != nil || s.Metadata.Description != "second" || s.Metadata.CreatedBy != osUser() {
						return fmt.Errorf("local/gen: %+v, %v", s.Metadata, err)
					}
					if s, err := l.Describe(ctx, "local/stub"); err != nil || len(s.Versions) != 0 {
						return fmt.Errorf("stub: %+v, %v", s, err)
					}
					if v, _, err := value(ctx, l, "local/wo"); err != nil || v != "local-one" {
						return fmt.Errorf("local/wo: %v", err)
					}
					return nil
				})
			}},
			{PreConfig: outOfBand, Config: cfg("second", "local-one"), PlanOnly: true, ExpectNonEmptyPlan: true},
			{Config: cfg("second", "local-one"), Check: func(*terraform.State) error {
				return withStore(func(ctx context.Context, l *core.Local) error {
					if v, n, err := value(ctx, l, "local/wo"); err != nil || v != "local-one" || n != 3 {
						return fmt.Errorf("local/wo after apply: version %d, %v", n, err)
					}
					if v, _, err := value(ctx, l, "local/stub"); err != nil || v != "stub value" {
						return fmt.Errorf("the stub's value was touched: %v", err)
					}
					return nil
				})
			}},
			{Config: cfg("second", "local-one"), ResourceName: "passman_secret.stub", ImportState: true, ImportStateId: "local/stub",
				ImportStateVerify: true, ImportStateVerifyIgnore: []string{"value_wo"}},
		},
		CheckDestroy: func(*terraform.State) error {
			return withStore(func(ctx context.Context, l *core.Local) error {
				for _, p := range []string{"local/gen", "local/wo", "local/stub"} {
					if _, err := l.Get(ctx, p, secret.Selector{}); err == nil {
						return fmt.Errorf("%s readable after destroy", p)
					}
					s, err := l.Describe(ctx, p)
					if err != nil {
						return fmt.Errorf("%s after destroy: %v (a soft delete keeps it)", p, err)
					}
					for _, v := range s.Versions {
						if v.State == secret.StateActive {
							return fmt.Errorf("%s v%d still active after destroy", p, v.Version)
						}
					}
				}
				return nil
			})
		},
	})
}

// TestServerDown: with the server gone, plan and apply fail with a
// diagnostic that says so, and nothing is half-written: when the server
// is back, the state and passman agree and the change applies whole.
func TestServerDown(t *testing.T) {
	needTerraform(t)
	e := servertest.New(t, servertest.Options{})
	addr := e.Server.Listener.Addr().String()
	handler := e.Server.Config.Handler
	cfg := func(desc string) string {
		return fmt.Sprintf(`
provider "passman" {
  address = %q
  token   = %q
  ca_cert = %q
}

resource "passman_secret" "a" {
  path        = "app/down/a"
  owner       = "team-a"
  description = %q
  generate {}
}

resource "passman_secret" "b" {
  path        = "app/down/b"
  owner       = "team-a"
  description = %q
  generate {}
}
`, e.URL, e.Tokens[servertest.Root], e.CAFile, desc, desc)
	}
	stop := func() { e.Server.Close() }
	restart := func() {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// httptest serves the same built-in certificate every time, so the
		// CA file still holds.
		srv := httptest.NewUnstartedServer(handler)
		srv.Listener.Close()
		srv.Listener = l
		srv.StartTLS()
		t.Cleanup(srv.Close)
	}
	descs := func(want string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			for _, p := range []string{"app/down/a", "app/down/b"} {
				s, err := e.Local.Describe(context.Background(), p)
				if err != nil || s.Metadata.Description != want || len(s.Versions) != 1 {
					return fmt.Errorf("%s: %q, %d versions, %v", p, s.Metadata.Description, len(s.Versions), err)
				}
			}
			return nil
		}
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(),
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_5_0)},
		Steps: []resource.TestStep{
			{Config: cfg("before"), Check: descs("before")},
			{PreConfig: stop, Config: cfg("after"), ExpectError: regexp.MustCompile(`passman server unreachable(.|\n)*Nothing was changed`)},
			{PreConfig: restart, Config: cfg("before"), PlanOnly: true, Check: descs("before")},
			{Config: cfg("after"), Check: descs("after")},
		},
	})
}

// TestWrittenButNotReadBack: when the server fails after a secret was
// written, before the provider could read it back, the state records the
// write (tainted), so the next apply replaces it instead of failing on a
// secret that "already exists" outside Terraform.
func TestWrittenButNotReadBack(t *testing.T) {
	needTerraform(t)
	e := servertest.New(t, servertest.Options{})
	var mu sync.Mutex
	failNextDescribe, failed := false, false
	proxy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fail := failNextDescribe && r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/describe/app/rb/")
		if fail {
			failNextDescribe, failed = false, true
		}
		if !failed && r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/secrets/app/rb/") {
			failNextDescribe = true
		}
		mu.Unlock()
		if fail {
			http.Error(w, `{"error":{"class":"invalid_argument","message":"invalid argument: injected failure"}}`, http.StatusBadRequest)
			return
		}
		e.Server.Config.Handler.ServeHTTP(w, r)
	}))
	proxy.StartTLS()
	t.Cleanup(proxy.Close)
	cfg := fmt.Sprintf(`
provider "passman" {
  address = %q
  token   = %q
  ca_cert = %q
}

resource "passman_secret" "rb" {
  path        = "app/rb/x"
  owner       = "team-a"
  description = "read back fails once"
  generate {}
}
`, proxy.URL, e.Tokens[servertest.Root], e.CAFile)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(),
		Steps: []resource.TestStep{
			{Config: cfg, ExpectError: regexp.MustCompile(`changed, but not read back`)},
			{Config: cfg, Check: func(*terraform.State) error {
				s, err := e.Local.Describe(context.Background(), "app/rb/x")
				if err != nil || len(s.Versions) != 2 || s.CurrentVersion != 2 {
					return fmt.Errorf("after the replacement: %+v, %v", s.Versions, err)
				}
				return nil
			}},
		},
	})
}

// TestLocalStoreInUse: while another process (here the test) holds the
// local store, the provider fails after its short wait with a message that
// says so, and changes nothing.
func TestLocalStoreInUse(t *testing.T) {
	needTerraform(t)
	dir := localStore(t)
	l := openLocal(t, dir)
	t.Cleanup(func() { l.Close() })
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(provider.Options{Getenv: func(string) string { return "" }}),
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
provider "passman" {
  store = %q
}

resource "passman_secret" "x" {
  path        = "local/busy"
  owner       = "me"
  description = "the store is busy"
  generate {}
}
`, dir),
			ExpectError: regexp.MustCompile(`in\s+use\s+by\s+another\s+passman\s+process`),
		}},
	})
	if _, err := l.Describe(context.Background(), "local/busy"); err == nil {
		t.Error("a secret was written to a store in use")
	}
}
