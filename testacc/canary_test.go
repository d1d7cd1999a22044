package testacc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/passman-dev/passman/secret"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// providerBinary builds terraform-provider-passman once per test run, for
// the tests that drive terraform themselves (the canary needs the whole
// TF_LOG=trace output, the provider process's included).
func providerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "passman-tf-provider-")
		if buildErr != nil {
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("build the provider: %w", err)
			return
		}
		cmd := exec.Command(goBin, "build", "-o",
			filepath.Join(buildDir, "terraform-provider-passman"), "github.com/passman-dev/passman/cmd/terraform-provider-passman")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("build the provider: %v\n%s", err, out.String())
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// tfDir is a working directory whose terraform runs the local provider
// build through dev_overrides: no registry, no download.
type tfDir struct {
	t    *testing.T
	dir  string
	env  []string
	logs []string // every run's TF_LOG=trace file
	outs []string // every run's stdout and stderr
}

func newTFDir(t *testing.T, config string, extraEnv ...string) *tfDir {
	t.Helper()
	dir := t.TempDir()
	rc := filepath.Join(dir, "terraform.rc")
	if err := os.WriteFile(rc, fmt.Appendf(nil, "provider_installation {\n  dev_overrides {\n    %q = %q\n  }\n  direct {}\n}\n",
		"passman-dev/passman", providerBinary(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_LOG=trace")
	return &tfDir{t: t, dir: dir, env: append(env, extraEnv...)}
}

// run runs terraform with args; it fails the test unless the run's exit
// status is what ok says.
func (d *tfDir) run(ok func(error) bool, args ...string) string {
	d.t.Helper()
	log := filepath.Join(d.dir, fmt.Sprintf("trace-%d.log", len(d.logs)))
	d.logs = append(d.logs, log)
	cmd := exec.Command(terraformPath, args...)
	cmd.Dir = d.dir
	cmd.Env = append(d.env, "TF_LOG_PATH="+log)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	d.outs = append(d.outs, stdout.String()+stderr.String())
	if !ok(err) {
		d.t.Fatalf("terraform %s: %v\n%s\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func succeeds(err error) bool { return err == nil }

// exits says a run ended with status code (plan -detailed-exitcode: 2
// for changes).
func exits(code int) func(error) bool {
	return func(err error) bool {
		var ee *exec.ExitError
		return errors.As(err, &ee) && ee.ExitCode() == code
	}
}

// forms are the spellings of a value a leak could take.
func forms(v string) []string {
	return []string{v, base64.StdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v)), hex.EncodeToString([]byte(v))}
}

// testCanary plants a value through value_wo (from an ephemeral variable)
// and a generated one through the ephemeral resource into another
// secret's value_wo, then runs apply, a saved plan, drift after a change
// made outside Terraform, and destroy, with TF_LOG=trace: neither value
// may appear in the state, the saved plan (terraform show -json), any
// run's output or any trace log.
func testCanary(t *testing.T, e *env) {
	t.Parallel()
	const planted = "canary-planted-9f27c4e1b3"
	config := `
terraform {
  required_providers {
    passman = { source = "passman-dev/passman" }
  }
}
` + e.providerBlock("root") + `
variable "planted" {
  type      = string
  ephemeral = true
  sensitive = true
}

resource "passman_secret" "planted" {
  path        = "tf/canary/planted"
  owner       = "team-a"
  description = "planted"
  value_wo    = var.planted
}

resource "passman_secret" "generated" {
  path        = "tf/canary/generated"
  owner       = "team-a"
  description = "generated"
  generate { length = 48 }
}

ephemeral "passman_secret" "generated" {
  path = passman_secret.generated.id
}

resource "passman_secret" "copy" {
  path             = "tf/canary/copy"
  owner            = "team-a"
  description      = "copy of the generated value"
  value_wo         = ephemeral.passman_secret.generated.value
  value_wo_version = passman_secret.generated.version
}
`
	d := newTFDir(t, config, "TF_VAR_planted="+planted)
	d.run(succeeds, "apply", "-auto-approve", "-input=false")
	ctx := context.Background()
	generated, _, err := value(ctx, e.Local, "tf/canary/generated")
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := value(ctx, e.Local, "tf/canary/planted"); err != nil || got != planted {
		t.Fatalf("planted value not in passman: %v", err)
	}
	// Drift: the plan compares the planted value with passman's.
	if _, err := e.Local.Put(ctx, "tf/canary/planted", secret.NewValue([]byte("changed-outside")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	d.run(exits(2), "plan", "-input=false", "-detailed-exitcode", "-out=drift.tfplan")
	showJSON := d.run(succeeds, "show", "-json", "drift.tfplan")
	if !strings.Contains(showJSON, `"passman_secret.planted"`) {
		t.Fatalf("saved plan does not plan the drifted secret:\n%s", showJSON)
	}
	d.run(succeeds, "apply", "-input=false", "drift.tfplan")
	if got, _, err := value(ctx, e.Local, "tf/canary/planted"); err != nil || got != planted {
		t.Fatalf("drift not undone: %v", err)
	}
	d.run(succeeds, "plan", "-input=false", "-detailed-exitcode")
	state, err := os.ReadFile(filepath.Join(d.dir, "terraform.tfstate"))
	if err != nil {
		t.Fatal(err)
	}
	d.run(succeeds, "destroy", "-auto-approve", "-input=false")

	places := map[string]string{"state": string(state), "terraform show -json of the saved plan": showJSON}
	for i, out := range d.outs {
		places[fmt.Sprintf("output of run %d", i)] = out
	}
	for _, log := range d.logs {
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 1000 {
			t.Fatalf("trace log %s is nearly empty: TF_LOG did not take", log)
		}
		places["trace log "+filepath.Base(log)] = string(b)
	}
	for where, text := range places {
		for name, v := range map[string]string{"planted": planted, "generated": generated} {
			for _, f := range forms(v) {
				if strings.Contains(text, f) {
					t.Errorf("the %s value appears in the %s", name, where)
				}
			}
		}
	}
}
