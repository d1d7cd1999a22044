# A team's rules, managed as code: compiled and tested by passman before
# they take effect.
resource "passman_policy" "teams" {
  name   = "teams"
  source = file("${path.module}/policies/teams.rego")
}

resource "passman_policy" "teams_test" {
  name       = "teams_test"
  source     = file("${path.module}/policies/teams_test.rego")
  depends_on = [passman_policy.teams]
}
