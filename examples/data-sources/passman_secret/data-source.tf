# Metadata only: a data source is stored in state, so it never holds a
# value. Read values with the ephemeral resource passman_secret.
data "passman_secret" "db" {
  path = "prod/db/password"
}

output "db_password_version" {
  value = data.passman_secret.db.version
}
