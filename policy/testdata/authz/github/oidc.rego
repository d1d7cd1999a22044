# GitHub Actions: the main branch of acme/app reads its production secrets;
# jobs bound to the production environment may also rotate them.
package passman.authz

acme_app if {
	input.subject.kind == "github-oidc"
	input.subject.claims.repository == "acme/app"
	startswith(input.path, "prod/app/")
}

main_branch_read if {
	acme_app
	input.subject.claims.ref == "refs/heads/main"
	input.action == "read"
}

production_environment if {
	acme_app
	input.subject.claims.environment == "production"
	input.action in {"read", "rotate"}
}

allow if main_branch_read

allow if production_environment

reasons contains "acme/app at refs/heads/main may read prod/app/" if main_branch_read

reasons contains "acme/app in environment production may read and rotate prod/app/" if production_environment
