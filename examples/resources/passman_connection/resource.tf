# How rotations reach the orders database: an admin DSN the server reads
# from its environment, and the secrets and roles allowed to use it.
resource "passman_connection" "pg_main" {
  name          = "pg-main"
  connector     = "postgres"
  config        = { admin_dsn = "env:PASSMAN_PG_ADMIN_DSN" }
  allowed_paths = ["prod/db/*"]
  allowed_roles = ["app_*"]
}
