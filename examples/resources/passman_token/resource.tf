# A token for the deploy pipeline. Its value is written to the secret at
# secret_path, never to Terraform state.
resource "passman_token" "deploy" {
  identity    = "deploy-pipeline"
  claims      = { role = "ci" }
  ttl         = "30d"
  secret_path = "ci/tokens/deploy"
}
