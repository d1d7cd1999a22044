# The value, for ephemeral contexts only (Terraform 1.10): here another
# secret's write-only value; a database resource's password_wo or another
# provider's configuration work the same way.
ephemeral "passman_secret" "db" {
  path = "prod/db/password"
}

resource "passman_secret" "db_copy" {
  path             = "prod/reporting/db-password"
  owner            = "team-reporting"
  description      = "Copy of the orders database password for reporting"
  tags             = { env = "prod" }
  value_wo         = ephemeral.passman_secret.db.value
  value_wo_version = 1
}
