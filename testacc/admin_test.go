package testacc

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
)

// testConnectionTokenData: an admin's connection used by a secret's
// rotation, a token written to a secret (never to state), and the data
// sources over them.
func testConnectionTokenData(t *testing.T, e *env) {
	cfg := e.providerBlock("root") + `
resource "passman_connection" "gen" {
  name          = "tf-gen"
  connector     = "generated"
  allowed_paths = ["tf/conn/*"]
}

resource "passman_secret" "r" {
  path        = "tf/conn/rotated"
  owner       = "team-a"
  description = "rotates through tf-gen"
  generate {}
  rotation {
    period     = "7d"
    connection = passman_connection.gen.name
  }
}

resource "passman_token" "ci" {
  identity    = "ci-bot"
  claims      = { role = "reader" }
  ttl         = "720h"
  secret_path = "tf/conn/ci-token"
}

data "passman_secret" "r" {
  path = passman_secret.r.id
}

data "passman_secrets" "conn" {
  prefix     = "tf/conn/"
  depends_on = [passman_secret.r, passman_token.ci]
}
`
	var token string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(),
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.passman_secret.r", tfjsonpath.New("rotation_connection"), knownvalue.StringExact("tf-gen")),
					statecheck.ExpectKnownValue("data.passman_secret.r", tfjsonpath.New("rotation_period"), knownvalue.StringExact("168h0m0s")),
					statecheck.ExpectKnownValue("data.passman_secrets.conn", tfjsonpath.New("secrets"), knownvalue.ListSizeExact(2)),
					statecheck.ExpectKnownValue("data.passman_secrets.conn", tfjsonpath.New("secrets").AtSliceIndex(0).AtMapKey("path"), knownvalue.StringExact("tf/conn/ci-token")),
				},
				Check: func(st *terraform.State) error {
					ctx := context.Background()
					v, _, err := value(ctx, e.Local, "tf/conn/ci-token")
					if err != nil {
						return err
					}
					token = v
					info, err := e.Local.LookupToken(ctx, v)
					if err != nil || info.Identity != "ci-bot" || info.Claims["role"] != "reader" {
						return fmt.Errorf("the token in the secret: %+v, %v", info, err)
					}
					if err := noValueInState(v)(st); err != nil {
						return err
					}
					c, err := e.Local.GetConnection(ctx, "tf-gen")
					if err != nil || c.Connector != "generated" {
						return fmt.Errorf("connection: %+v, %v", c, err)
					}
					return nil
				},
			},
			{Config: cfg, PlanOnly: true},
			{Config: cfg, ResourceName: "passman_connection.gen", ImportState: true, ImportStateId: "tf-gen", ImportStateVerify: true},
		},
		CheckDestroy: func(*terraform.State) error {
			ctx := context.Background()
			if _, err := e.Local.LookupToken(ctx, token); err == nil {
				return fmt.Errorf("the token still works after destroy")
			}
			if _, err := e.Local.GetConnection(ctx, "tf-gen"); err == nil {
				return fmt.Errorf("the connection survived destroy")
			}
			return nil
		},
	})
}

// testEphemeralToken: a short-lived token configures a second provider
// block for the run and is revoked when Terraform is done with it.
func testEphemeralToken(t *testing.T, e *env) {
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(),
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_10_0)},
		Steps: []resource.TestStep{{
			Config: e.providerBlock("root") + fmt.Sprintf(`
ephemeral "passman_token" "run" {
  identity = "tf-run"
  claims   = { role = "root" }
  ttl      = "15m"
}

provider "passman" {
  alias   = "run"
  address = %q
  ca_cert = %q
  token   = ephemeral.passman_token.run.token
}

resource "passman_secret" "via" {
  provider    = passman.run
  path        = "tf/ephtoken/x"
  owner       = "team-a"
  description = "written with the run's token"
  generate {}
}
`, e.URL, e.CAFile),
			Check: func(*terraform.State) error {
				ctx := context.Background()
				s, err := describe(ctx, e, "tf/ephtoken/x")
				if err != nil || s.Metadata.CreatedBy != "tf-run" {
					return fmt.Errorf("secret written by %q, %v", s.Metadata.CreatedBy, err)
				}
				infos, err := e.Local.ListTokens(ctx)
				if err != nil {
					return err
				}
				var live []string
				for _, ti := range infos {
					if ti.Identity == "tf-run" && ti.RevokedAt.IsZero() {
						live = append(live, ti.Accessor)
					}
				}
				if len(live) > 0 {
					return fmt.Errorf("run tokens not revoked: %s", strings.Join(live, ", "))
				}
				return nil
			},
		}},
	})
}
