# A passman server. address, token and ca_cert default to PASSMAN_ADDR,
# PASSMAN_TOKEN and PASSMAN_CACERT, as for the passman CLI.
provider "passman" {
  address = "https://passman.example.com:8443"
  ca_cert = "/etc/passman/ca.pem"
}

# Inside a GitHub Actions job (permissions: id-token: write): the job's
# OIDC token is exchanged for a short-lived passman token; no stored token.
provider "passman" {
  alias   = "ci"
  address = "https://passman.example.com:8443"
  oidc {
    audience = "https://passman.example.com"
  }
}

# A local store, for one person or a small team without a server. Its
# master key comes from key_file, PASSMAN_KEY_FILE, PASSMAN_MASTER_KEY or
# STORE/master.key.
provider "passman" {
  alias = "local"
  store = "/home/me/.local/share/passman"
}
