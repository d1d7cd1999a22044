package testacc

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/passman-dev/passman/provider"
	"github.com/passman-dev/passman/secret"
)

// writeOnly: write-only arguments need Terraform 1.11.
var writeOnly = []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)}

// TestAcceptance runs every acceptance test against one shared server, in
// parallel where they touch different paths.
func TestAcceptance(t *testing.T) {
	needTerraform(t)
	e := newEnv(t)
	for name, fn := range map[string]func(*testing.T, *env){
		"lifecycle":       testLifecycle,
		"purge":           testPurge,
		"import":          testImport,
		"import block":    testImportBlock,
		"value_wo":        testValueWO,
		"ephemeral":       testEphemeralIntoWriteOnly,
		"drift":           testDrift,
		"rotation":        testRotationNoDiff,
		"policy deny":     testPolicyDeny,
		"oidc":            testOIDC,
		"connection":      testConnectionTokenData,
		"ephemeral token": testEphemeralToken,
		"canary":          testCanary,
		"policy":          testPolicy,
		"validation":      testValidation,
		"recreate":        testRecreate,
	} {
		t.Run(name, func(t *testing.T) { fn(t, e) })
	}
}

func describe(ctx context.Context, e *env, path string) (secret.Secret, error) {
	return e.Local.Describe(ctx, path)
}

// checkPassman runs fn against passman after a step.
func checkPassman(fn func(context.Context) error) resource.TestCheckFunc {
	return func(*terraform.State) error { return fn(context.Background()) }
}

func activeVersions(s secret.Secret) int {
	n := 0
	for _, v := range s.Versions {
		if v.State == secret.StateActive {
			n++
		}
	}
	return n
}

// testLifecycle: create, update in place, replace, a plan with no change,
// destroy (soft delete).
func testLifecycle(t *testing.T, e *env) {
	cfg := func(path, desc, tags string) string {
		return e.providerBlock("root") + fmt.Sprintf(`
resource "passman_secret" "a" {
  path        = %q
  owner       = "team-a"
  description = %q
  tags        = { %s }
  generate { length = 24 }
}
`, path, desc, tags)
	}
	ctx := context.Background()
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(),
		Steps: []resource.TestStep{
			{
				Config: cfg("tf/life/one", "first", `env = "dev"`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("passman_secret.a", tfjsonpath.New("version"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue("passman_secret.a", tfjsonpath.New("id"), knownvalue.StringExact("tf/life/one")),
				},
				Check: checkPassman(func(ctx context.Context) error {
					v, n, err := value(ctx, e.Local, "tf/life/one")
					if err != nil || n != 1 || len(v) != 24 {
						return fmt.Errorf("generated value: %d bytes, version %d, %v", len(v), n, err)
					}
					return nil
				}),
			},
			{
				Config: cfg("tf/life/one", "second", `env = "dev", tier = "1"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("passman_secret.a", plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue("passman_secret.a", tfjsonpath.New("version"), knownvalue.Int64Exact(1)),
				}},
				Check: checkPassman(func(ctx context.Context) error {
					s, err := describe(ctx, e, "tf/life/one")
					if err != nil || s.Metadata.Description != "second" || s.Metadata.Tags["tier"] != "1" || len(s.Versions) != 1 {
						return fmt.Errorf("after update: %+v, %v", s, err)
					}
					return nil
				}),
			},
			{
				Config: cfg("tf/life/two", "second", `env = "dev"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("passman_secret.a", plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: checkPassman(func(ctx context.Context) error {
					old, err := describe(ctx, e, "tf/life/one")
					if err != nil || activeVersions(old) != 0 {
						return fmt.Errorf("replaced secret keeps active versions: %+v, %v", old, err)
					}
					s, err := describe(ctx, e, "tf/life/two")
					if err != nil || activeVersions(s) != 1 {
						return fmt.Errorf("new secret: %+v, %v", s, err)
					}
					return nil
				}),
			},
			{Config: cfg("tf/life/two", "second", `env = "dev"`), PlanOnly: true},
		},
		CheckDestroy: func(*terraform.State) error {
			s, err := describe(ctx, e, "tf/life/two")
			if err != nil || activeVersions(s) != 0 || len(s.Versions) != 1 {
				return fmt.Errorf("destroy should soft-delete: %+v, %v", s, err)
			}
			return nil
		},
	})
}

// testPurge: destroy_on_delete purges.
func testPurge(t *testing.T, e *env) {
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(),
		Steps: []resource.TestStep{{Config: e.providerBlock("root") + `
resource "passman_secret" "p" {
  path              = "tf/purge/x"
  owner             = "team-a"
  description       = "purged on destroy"
  destroy_on_delete = true
  generate {}
}
`}},
		CheckDestroy: func(*terraform.State) error {
			if _, err := describe(context.Background(), e, "tf/purge/x"); !errors.Is(err, secret.ErrNotFound) {
				return fmt.Errorf("after a purge: %v, want not found", err)
			}
			return nil
		},
	})
}

// importedConfig matches the secret importFixture makes.
func importedConfig(e *env, path string) string {
	return e.providerBlock("root") + fmt.Sprintf(`
resource "passman_secret" "i" {
  path        = %q
  owner       = "team-imp"
  description = "made outside Terraform"
  tags        = { env = "dev" }
  rotation {
    period     = "30d"
    connection = "generated"
    grace      = "1h"
  }
}
`, path)
}

func importFixture(t *testing.T, e *env, path string) {
	t.Helper()
	owner, desc := "team-imp", "made outside Terraform"
	period, _ := secret.ParseDuration("30d")
	u := secret.MetadataUpdate{Owner: &owner, Description: &desc, Tags: map[string]string{"env": "dev"}, RotationPeriod: &period,
		Rotation: &secret.Rotation{Connection: secret.GeneratedConnection, GracePeriod: secret.Duration(time.Hour)}}
	if _, err := e.Local.Put(context.Background(), path, secret.NewValue([]byte("imported value")), secret.PutOptions{Metadata: &u}); err != nil {
		t.Fatal(err)
	}
}

// testImport: terraform import by path, then a plan of the matching
// configuration shows no change.
func testImport(t *testing.T, e *env) {
	importFixture(t, e, "tf/imp/cmd")
	cfg := importedConfig(e, "tf/imp/cmd")
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(),
		Steps: []resource.TestStep{
			{Config: cfg, ResourceName: "passman_secret.i", ImportState: true, ImportStateId: "tf/imp/cmd", ImportStatePersist: true,
				ImportStateKind: resource.ImportCommandWithID},
			{Config: cfg, PlanOnly: true},
		},
	})
}

// testImportBlock: an import {} block plans the import with no change.
func testImportBlock(t *testing.T, e *env) {
	importFixture(t, e, "tf/imp/block")
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(),
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_5_0)},
		Steps: []resource.TestStep{
			{Config: importedConfig(e, "tf/imp/block"), ResourceName: "passman_secret.i", ImportState: true, ImportStateId: "tf/imp/block",
				ImportStateKind: resource.ImportBlockWithID},
		},
	})
}

// testValueWO: a write-only value reaches passman and not the state.
func testValueWO(t *testing.T, e *env) {
	const v = "value-wo-canary-7d1e"
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(),
		TerraformVersionChecks:   writeOnly,
		Steps: []resource.TestStep{{
			Config: e.providerBlock("root") + `
resource "passman_secret" "w" {
  path        = "tf/wo/x"
  owner       = "team-a"
  description = "write-only"
  value_wo    = "` + v + `"
}
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("passman_secret.w", tfjsonpath.New("value_wo"), knownvalue.Null()),
			},
			Check: resource.ComposeTestCheckFunc(
				checkPassman(func(ctx context.Context) error {
					got, _, err := value(ctx, e.Local, "tf/wo/x")
					if err != nil || got != v {
						return fmt.Errorf("value in passman: %v", err)
					}
					return nil
				}),
				noValueInState(v),
			),
		}},
	})
}

// noValueInState fails when the state holds s anywhere.
func noValueInState(s string) resource.TestCheckFunc {
	return func(st *terraform.State) error {
		if strings.Contains(fmt.Sprintf("%#v", st), s) || strings.Contains(st.String(), s) {
			return fmt.Errorf("the state holds the value")
		}
		for _, m := range st.Modules {
			for _, r := range m.Resources {
				for k, a := range r.Primary.Attributes {
					if strings.Contains(a, s) {
						return fmt.Errorf("state attribute %s holds the value", k)
					}
				}
			}
		}
		return nil
	}
}

// testEphemeralIntoWriteOnly: a generated value flows through the
// ephemeral passman_secret into a second secret's value_wo.
func testEphemeralIntoWriteOnly(t *testing.T, e *env) {
	cfg := e.providerBlock("root") + `
resource "passman_secret" "src" {
  path        = "tf/eph/src"
  owner       = "team-a"
  description = "source"
  generate { length = 40 }
}

ephemeral "passman_secret" "src" {
  path = passman_secret.src.id
}

resource "passman_secret" "dst" {
  path             = "tf/eph/dst"
  owner            = "team-a"
  description      = "copy"
  value_wo         = ephemeral.passman_secret.src.value
  value_wo_version = passman_secret.src.version
}
`
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(),
		TerraformVersionChecks:   writeOnly,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				Check: checkPassman(func(ctx context.Context) error {
					src, _, err1 := value(ctx, e.Local, "tf/eph/src")
					dst, _, err2 := value(ctx, e.Local, "tf/eph/dst")
					if err := errors.Join(err1, err2); err != nil || len(src) != 40 || src != dst {
						return fmt.Errorf("copied value differs (%d bytes, %d bytes): %v", len(src), len(dst), err)
					}
					return nil
				}),
			},
			{Config: cfg, PlanOnly: true},
		},
	})
}

// testDrift: a change made with the CLI is seen by plan and undone by
// apply; with value_wo_version set, only the version decides.
func testDrift(t *testing.T, e *env) {
	const path = "tf/drift/x"
	cfg := func(v, version string) string {
		return e.providerBlock("root") + fmt.Sprintf(`
resource "passman_secret" "d" {
  path        = %q
  owner       = "team-a"
  description = "drift"
  value_wo    = %q
  %s
}
`, path, v, version)
	}
	outOfBand := func() {
		if _, err := e.Local.Put(context.Background(), path, secret.NewValue([]byte("changed-with-the-cli")), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	want := func(v string, version int) resource.TestCheckFunc {
		return checkPassman(func(ctx context.Context) error {
			got, n, err := value(ctx, e.Local, path)
			if err != nil || got != v || n != version {
				return fmt.Errorf("passman holds version %d (want %d), value as configured: %t, %v", n, version, got == v, err)
			}
			return nil
		})
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(),
		TerraformVersionChecks:   writeOnly,
		Steps: []resource.TestStep{
			{Config: cfg("drift-one", ""), Check: want("drift-one", 1)},
			{PreConfig: outOfBand, Config: cfg("drift-one", ""), PlanOnly: true, ExpectNonEmptyPlan: true},
			{Config: cfg("drift-one", ""), Check: want("drift-one", 3),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("passman_secret.d", plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue("passman_secret.d", tfjsonpath.New("version")),
				}}},
			{Config: cfg("drift-one", ""), PlanOnly: true},
			// A new value in the configuration is applied without a version bump.
			{Config: cfg("drift-two", ""), Check: want("drift-two", 4)},
			// With value_wo_version, the version alone decides.
			{Config: cfg("drift-three", "value_wo_version = 1"), Check: want("drift-three", 5)},
			{PreConfig: outOfBand, Config: cfg("drift-three", "value_wo_version = 1"), PlanOnly: true},
			{Config: cfg("drift-four", "value_wo_version = 2"), Check: want("drift-four", 7)},
			// on_drift = "ignore": the configuration only seeded the value.
			{Config: cfg("drift-four", `on_drift = "ignore"`), Check: want("drift-four", 7)},
			{PreConfig: outOfBand, Config: cfg("drift-four", `on_drift = "ignore"`), PlanOnly: true},
		},
	})
}

// testRotationNoDiff: once passman rotates a secret, neither a generated
// nor a seeded (value_wo, on_drift auto) secret shows a change.
func testRotationNoDiff(t *testing.T, e *env) {
	cfg := e.providerBlock("root") + `
resource "passman_secret" "gen" {
  path        = "tf/rot/gen"
  owner       = "team-a"
  description = "rotated"
  generate { length = 32 }
  rotation {
    period     = "30d"
    connection = "generated"
  }
}

resource "passman_secret" "seeded" {
  path        = "tf/rot/seeded"
  owner       = "team-a"
  description = "seeded, then rotated"
  value_wo    = "first-seed"
  rotation {
    period     = "30d"
    connection = "generated"
  }
}
`
	rotate := func() {
		for _, p := range []string{"tf/rot/gen", "tf/rot/seeded"} {
			if _, err := e.Local.Rotate(context.Background(), p, "manual"); err != nil {
				t.Fatalf("rotate %s: %v", p, err)
			}
		}
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(),
		TerraformVersionChecks:   writeOnly,
		Steps: []resource.TestStep{
			{Config: cfg},
			{PreConfig: rotate, Config: cfg, PlanOnly: true},
			{Config: cfg, ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("passman_secret.gen", tfjsonpath.New("version"), knownvalue.Int64Exact(2)),
				statecheck.ExpectKnownValue("passman_secret.seeded", tfjsonpath.New("version"), knownvalue.Int64Exact(2)),
				statecheck.ExpectKnownValue("passman_secret.seeded", tfjsonpath.New("rotated_at"), knownvalue.NotNull()),
			}},
		},
	})
}

// testPolicyDeny: a secret the lint policy denies fails at plan, on the
// offending attribute, and nothing is created.
func testPolicyDeny(t *testing.T, e *env) {
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(),
		Steps: []resource.TestStep{{
			Config: e.providerBlock("root") + `
resource "passman_secret" "bad" {
  path        = "tf/deny/x"
  description = "no owner"
  generate { length = 8 }
}
`,
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`(?s)Policy denies tf/deny/x \(generator_strength\).*Policy denies tf/deny/x \(owner_required\).*owner is required`),
		}},
	})
	if _, err := describe(context.Background(), e, "tf/deny/x"); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("a denied secret exists: %v", err)
	}
}

// testOIDC: the provider logs in as a GitHub Actions workflow through the
// local issuer, with no token configured.
func testOIDC(t *testing.T, e *env) {
	getenv := func(k string) string {
		return map[string]string{
			"ACTIONS_ID_TOKEN_REQUEST_URL":   e.ghTokens.URL + "/token?api-version=2.0",
			"ACTIONS_ID_TOKEN_REQUEST_TOKEN": oidcRequestToken,
		}[k]
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(provider.Options{Getenv: getenv}),
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
provider "passman" {
  address = %q
  ca_cert = %q
  oidc {
    audience = %q
  }
}

resource "passman_secret" "ci" {
  path        = "ci/oidc/x"
  owner       = "team-ci"
  description = "written by a workflow"
  generate {}
}
`, e.URL, e.CAFile, oidcAudience),
			Check: checkPassman(func(ctx context.Context) error {
				s, err := describe(ctx, e, "ci/oidc/x")
				if err != nil || s.Metadata.CreatedBy != "repo:"+oidcRepo+":ref:refs/heads/main" {
					return fmt.Errorf("secret written by %q, %v", s.Metadata.CreatedBy, err)
				}
				return nil
			}),
		}},
	})
}

// testRecreate: a secret destroyed (soft-deleted) and declared again is
// taken over with its history, and so is a stub that gets a value.
func testRecreate(t *testing.T, e *env) {
	withSecrets := e.providerBlock("root") + `
resource "passman_secret" "g" {
  path        = "tf/recreate/gen"
  owner       = "team-a"
  description = "declared twice"
  generate {}
}

resource "passman_secret" "s" {
  path        = "tf/recreate/stub"
  owner       = "team-a"
  description = "a stub, then a value"
}
`
	withValue := strings.Replace(withSecrets, `description = "a stub, then a value"`, `description = "a stub, then a value"
  value_wo    = "now a value"`, 1)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(),
		TerraformVersionChecks:   writeOnly,
		Steps: []resource.TestStep{
			{Config: withSecrets},
			{Config: e.providerBlock("root")},
			{Config: withValue, Check: checkPassman(func(ctx context.Context) error {
				s, err := describe(ctx, e, "tf/recreate/gen")
				if err != nil || len(s.Versions) != 2 || activeVersions(s) != 1 || s.CurrentVersion != 2 {
					return fmt.Errorf("re-created secret: %+v, %v", s.Versions, err)
				}
				if v, n, err := value(ctx, e.Local, "tf/recreate/stub"); err != nil || v != "now a value" || n != 1 {
					return fmt.Errorf("stub with a value: version %d, %v", n, err)
				}
				return nil
			})},
		},
	})
}
