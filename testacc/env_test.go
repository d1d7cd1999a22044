// Package testacc holds the provider's acceptance tests: the real
// terraform binary drives the provider (in-process, through
// terraform-plugin-testing) against a real passman server started by the
// test (TLS, tokens, a temporary store) and against local stores.
package testacc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/oidctest"
	"github.com/passman-dev/passman/provider"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/server/servertest"
)

// terraformPath is the terraform binary the tests drive; "" when there is
// none, and the tests skip (TestMain says so loudly).
var terraformPath string

// TestMain finds terraform before any test runs: without
// TF_ACC_TERRAFORM_PATH terraform-plugin-testing would try to download
// one, which fails offline and takes the whole package down with it.
func TestMain(m *testing.M) {
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if tf == "" {
		tf, _ = exec.LookPath("terraform")
	}
	if tf == "" {
		if os.Getenv("PASSMAN_REQUIRE_TERRAFORM") == "1" {
			fmt.Fprintln(os.Stderr, "FAIL: no terraform binary on PATH (or TF_ACC_TERRAFORM_PATH), and PASSMAN_REQUIRE_TERRAFORM=1: the provider's acceptance tests cannot run. Install terraform 1.11 or later.")
			os.Exit(1)
		}
		fmt.Fprint(os.Stderr, "\n*** SKIPPING the Terraform provider's acceptance tests: no terraform binary on PATH (or TF_ACC_TERRAFORM_PATH). ***\n\n")
	} else {
		terraformPath = tf
		for k, v := range map[string]string{"TF_ACC_TERRAFORM_PATH": tf, "TF_ACC": "1", "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"} {
			if err := os.Setenv(k, v); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
	}
	os.Exit(m.Run())
}

func needTerraform(t *testing.T) {
	t.Helper()
	if terraformPath == "" {
		t.Skip("SKIP: no terraform binary; the provider's acceptance tests did not run")
	}
}

// oidcAudience is the shared server's OIDC audience; oidcRepo the
// repository whose workflow may write under ci/.
const (
	oidcAudience = "https://passman.test"
	oidcRepo     = "acme/infra"
	// oidcRequestToken is what the fake GitHub Actions service expects as
	// ACTIONS_ID_TOKEN_REQUEST_TOKEN.
	oidcRequestToken = "gh-request-token"
)

// accPolicy is servertest's policy, and a GitHub Actions workflow of
// oidcRepo may do anything under ci/.
var accPolicy = servertest.Policy + `
allow if {
	input.subject.kind == "github-oidc"
	input.subject.claims.repository == "` + oidcRepo + `"
	startswith(input.path, "ci/")
}
`

// env is the server the tests share, and a local OIDC issuer with a
// stand-in for GitHub Actions' ID token endpoint.
type env struct {
	*servertest.Env
	iss      *oidctest.Issuer
	ghTokens *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	iss := oidctest.New(t)
	o, err := server.NewOIDC(server.OIDCConfig{Issuer: iss.URL, Audience: oidcAudience, HTTPClient: iss.Client(), AllowedOwners: []string{"acme"}})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{Env: servertest.New(t, servertest.Options{Policy: accPolicy, OIDC: o}), iss: iss}
	// servertest's clock starts in the past; OIDC tokens' expiry is checked
	// against the provider's real clock.
	e.Clock.Advance(time.Since(e.Clock.Now()))
	var mu sync.Mutex
	e.ghTokens = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+oidcRequestToken {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		jwt := iss.Sign(t, oidctest.RS256, iss.GitHubClaims(oidcRepo, r.URL.Query().Get("audience"), time.Now()))
		_ = json.NewEncoder(w).Encode(map[string]any{"count": len(jwt), "value": jwt})
	}))
	t.Cleanup(e.ghTokens.Close)
	return e
}

// factories serve the provider in-process to terraform.
func factories(opts provider.Options) map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"passman": providerserver.NewProtocol6WithError(provider.New("test", opts)()),
	}
}

// remoteFactories is the provider reading no environment.
func remoteFactories() map[string]func() (tfprotov6.ProviderServer, error) {
	return factories(provider.Options{Getenv: func(string) string { return "" }})
}

// providerBlock configures the provider for the server with a token of
// kind (servertest.Root, ...).
func (e *env) providerBlock(kind string) string {
	return fmt.Sprintf(`
provider "passman" {
  address = %q
  token   = %q
  ca_cert = %q
}
`, e.URL, e.Tokens[kind], e.CAFile)
}

// localStore makes a store in a temporary directory, created by this OS
// user (whom the bundled policy makes its admin, as the provider works as
// that user), and returns its directory.
func localStore(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	if _, err := core.Init(context.Background(), core.Options{Dir: dir, Actor: osUser(), AuditSync: audit.SyncWrite}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid:" + strconv.Itoa(os.Getuid())
}

// openLocal opens a store the provider has used; the provider releases
// it a moment after its last operation, and opening waits for that.
func openLocal(t *testing.T, dir string) *core.Local {
	t.Helper()
	l, err := core.Open(context.Background(), core.Options{Dir: dir, Actor: osUser(), AuditSync: audit.SyncWrite})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// value reads a secret's current value as the store's admin.
func value(ctx context.Context, svc interface {
	Get(context.Context, string, secret.Selector) (secret.Versioned, error)
}, path string) (string, int, error) {
	v, err := svc.Get(ctx, path, secret.Selector{})
	if err != nil {
		return "", 0, err
	}
	defer v.Value.Wipe()
	return string(v.Value.Reveal()), v.Info.Version, nil
}
