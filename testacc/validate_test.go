package testacc

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// testValidation: malformed and hostile configuration fails at plan, with
// a message naming the problem, before passman is asked anything.
func testValidation(t *testing.T, e *env) {
	for name, tc := range map[string]struct{ body, want string }{
		"both value sources": {`value_wo = "x"
  generate {}`, `Conflicting value sources`},
		"version without value": {`value_wo_version = 1`, `value_wo_version without value_wo`},
		"path escapes":          {`path_override = 1`, `Unsupported argument`},
		"bad duration":          {`rotation { period = "soon" }`, `Invalid duration`},
		"grace without connection": {`rotation {
    period = "30d"
    grace  = "1h"
  }`, `Rotation parameters without a connection`},
		"short generated value": {`generate { length = 4 }`, `Invalid generate block`},
		"unknown class":         {`generate { classes = ["emoji"] }`, `unknown character class`},
		"on_drift":              {`on_drift = "sometimes"`, `on_drift`},
	} {
		t.Run(name, func(t *testing.T) {
			resource.ParallelTest(t, resource.TestCase{
				ProtoV6ProviderFactories: remoteFactories(),
				TerraformVersionChecks:   writeOnly,
				Steps: []resource.TestStep{{
					Config: e.providerBlock("root") + `
resource "passman_secret" "v" {
  path        = "tf/validate/x"
  owner       = "team-a"
  description = "invalid"
  ` + tc.body + `
}
`,
					PlanOnly:    true,
					ExpectError: regexp.MustCompile(regexp.QuoteMeta(tc.want)),
				}},
			})
		})
	}
	for name, p := range map[string]string{
		"dot-dot path":  "../etc/passwd",
		"absolute path": "/etc/passwd",
		"control char":  "tf/\x1b[31m",
		"huge path":     strings.Repeat("a/", 600),
	} {
		t.Run(name, func(t *testing.T) {
			resource.ParallelTest(t, resource.TestCase{
				ProtoV6ProviderFactories: remoteFactories(),
				Steps: []resource.TestStep{{
					Config: e.providerBlock("root") + `
resource "passman_secret" "v" {
  path        = "` + strings.ReplaceAll(p, "\x1b", `\u001b`) + `"
  owner       = "team-a"
  description = "invalid"
}
`,
					PlanOnly:    true,
					ExpectError: regexp.MustCompile(`Invalid secret path`),
				}},
			})
		})
	}
}
