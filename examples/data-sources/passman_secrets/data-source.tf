data "passman_secrets" "prod" {
  prefix = "prod/"
}

output "prod_paths" {
  value = [for s in data.passman_secrets.prod.secrets : s.path]
}
