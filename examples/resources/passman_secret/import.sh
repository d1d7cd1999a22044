# A secret is imported by its path.
terraform import passman_secret.db_password prod/db/password
