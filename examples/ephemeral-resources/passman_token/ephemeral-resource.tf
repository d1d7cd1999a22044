# A token made for this run only, revoked when Terraform is done with it.
ephemeral "passman_token" "reader" {
  identity = "terraform-run"
  claims   = { role = "reader" }
  ttl      = "15m"
}

provider "passman" {
  alias   = "reader"
  address = "https://passman.example.com:8443"
  token   = ephemeral.passman_token.reader.token
}
