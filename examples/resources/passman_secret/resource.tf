# A value passman generates: Terraform never sees it.
resource "passman_secret" "api_token" {
  path        = "prod/app/api-token"
  owner       = "team-app"
  description = "Token the app presents to the payments API"
  tags        = { env = "prod" }
  generate {
    length  = 40
    classes = ["upper", "lower", "digits"]
  }
  rotation {
    period     = "30d"
    connection = "generated"
  }
}

# A value you supply, write-only (Terraform 1.11): never in state or plan.
# Each plan asks passman whether it still equals the current value.
variable "db_password" {
  type      = string
  ephemeral = true
  sensitive = true
}

resource "passman_secret" "db_password" {
  path        = "prod/db/password"
  owner       = "team-db"
  description = "Application role of the orders database"
  tags        = { env = "prod" }
  value_wo    = var.db_password
  rotation {
    period     = "30d"
    connection = "pg-main"
    params     = { role = "app_orders" }
    grace      = "1h"
  }
  # Once passman has rotated it, the seed above no longer matters (the
  # default, "auto").
  on_drift = "auto"
}

# A stub: Terraform manages path, metadata and rotation; the value is put
# elsewhere (passman secret put prod/partner/key).
resource "passman_secret" "partner_key" {
  path        = "prod/partner/key"
  owner       = "team-partners"
  description = "Key the partner sends us by other means"
  tags        = { env = "prod" }
  rotation {
    period = "90d"
  }
}
