# Team policy: each team reads the secrets it owns, and the main branch of
# acme/app may read the app's secrets from GitHub Actions.
package passman.authz

team_of := {
	"alice": "team-app",
	"bob": "team-db",
}

allow if {
	input.subject.kind == "user"
	input.action in {"read", "list"}
	team_of[input.subject.id] == input.secret.owner
}

allow if {
	input.subject.kind == "github-oidc"
	input.subject.claims.repository == "acme/app"
	input.subject.claims.ref == "refs/heads/main"
	input.action == "read"
	startswith(input.path, "prod/app/")
}

reasons contains sprintf("%s reads secrets of %s", [input.subject.id, input.secret.owner]) if {
	input.subject.kind == "user"
	team_of[input.subject.id] == input.secret.owner
}
