# A connection is imported by its name.
terraform import passman_connection.pg_main pg-main
