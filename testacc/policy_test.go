package testacc

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// teamRule is a lint rule held by the store: secrets under tf/pol/ need a
// team tag. It touches no other test's paths.
const teamRule = `package passman.lint

deny contains {"rule": "tf_team_tag", "path": s.path, "msg": "secrets under tf/pol/ need a team tag"} if {
	some s in input.secrets
	startswith(s.path, "tf/pol/")
	not s.tags.team
}
`

// testPolicy: a passman_policy takes effect at once (a plan of a secret
// it denies fails), a module that does not compile is refused with the
// compiler's position and the one in force stays, and destroy removes it.
func testPolicy(t *testing.T, e *env) {
	policy := func(source string) string {
		return e.providerBlock("root") + fmt.Sprintf(`
resource "passman_policy" "team" {
  name   = "tf-team"
  source = %q
}
`, source)
	}
	secretCfg := func(tags string) string {
		return fmt.Sprintf(`
resource "passman_secret" "s" {
  path        = "tf/pol/x"
  owner       = "team-a"
  description = "needs a team tag"
  tags        = { %s }
  generate {}
  depends_on  = [passman_policy.team]
}
`, tags)
	}
	version := func(want int) resource.TestCheckFunc {
		return func(*terraform.State) error {
			p, err := e.Local.GetPolicy(context.Background(), "tf-team")
			if err != nil || p.Version != want || p.Source != teamRule {
				return fmt.Errorf("stored policy: version %d (want %d), %v", p.Version, want, err)
			}
			return nil
		}
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(),
		Steps: []resource.TestStep{
			{Config: policy(teamRule), Check: version(1)},
			{Config: policy(teamRule) + secretCfg(`env = "dev"`), PlanOnly: true,
				ExpectError: regexp.MustCompile(`Policy denies tf/pol/x \(tf_team_tag\)`)},
			{Config: policy(teamRule + "\ndeny contains x if {\n"), ExpectError: regexp.MustCompile(`store:tf-team\.rego:\d+:\d+`)},
			{Config: policy(teamRule) + secretCfg(`team = "a"`), Check: version(1)},
			{Config: policy(teamRule) + secretCfg(`team = "a"`), ResourceName: "passman_policy.team", ImportState: true, ImportStateId: "tf-team", ImportStateVerify: true},
		},
		CheckDestroy: func(*terraform.State) error {
			if _, err := e.Local.GetPolicy(context.Background(), "tf-team"); err == nil {
				return fmt.Errorf("the policy survived destroy")
			}
			return nil
		},
	})
}
