# Team policy: each team reads the secrets it owns, and the deploy job of
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
	app_deploy_job
	input.action == "read"
	startswith(input.path, "prod/app/")
}

# app_deploy_job is the production deploy of acme/app, pinned claim by
# claim. repository and ref alone are not enough: a pull_request_target,
# issue_comment or workflow_run job also runs with ref = the default
# branch, and the first two on behalf of anyone who opens a pull request
# or comments, so a fork's code it checks out could read the secrets.
app_deploy_job if {
	input.subject.kind == "github-oidc"
	claims := input.subject.claims

	# The repository by its id too: a name can be deleted and re-created,
	# or an owner renamed and re-registered, by someone else.
	claims.repository == "acme/app"
	claims.repository_id == "123456"

	# Only events a maintainer causes on main: a push or a manual run.
	claims.ref == "refs/heads/main"
	claims.event_name in {"push", "workflow_dispatch"}

	# The one workflow that deploys (for a reusable workflow, the called
	# one), so another workflow of the repository cannot ask.
	claims.job_workflow_ref == "acme/app/.github/workflows/deploy.yml@refs/heads/main"

	# The job runs in the environment whose protection rules (required
	# reviewers, deployment branches) GitHub enforced before minting it.
	claims.environment == "production"
}

reasons contains sprintf("%s reads secrets of %s", [input.subject.id, input.secret.owner]) if {
	input.subject.kind == "user"
	team_of[input.subject.id] == input.secret.owner
}

reasons contains "the production deploy job of acme/app reads prod/app/" if app_deploy_job
