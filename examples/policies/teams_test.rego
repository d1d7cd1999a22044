package passman.authz_test

import data.passman.authz

test_team_reads_own_secret if {
	authz.allow with input as {
		"subject": {"id": "bob", "kind": "user"},
		"action": "read",
		"path": "prod/db/password",
		"secret": {"owner": "team-db"},
		"store": {"created_by": "root"},
	}
}

test_team_cannot_read_other_secret if {
	not authz.allow with input as {
		"subject": {"id": "bob", "kind": "user"},
		"action": "read",
		"path": "prod/app/token",
		"secret": {"owner": "team-app"},
		"store": {"created_by": "root"},
	}
}

# deploy_claims are the claims of acme/app's production deploy job, as
# GitHub sets them for a push to main.
deploy_claims := {
	"repository": "acme/app",
	"repository_owner": "acme",
	"repository_id": "123456",
	"ref": "refs/heads/main",
	"ref_type": "branch",
	"event_name": "push",
	"environment": "production",
	"workflow_ref": "acme/app/.github/workflows/deploy.yml@refs/heads/main",
	"job_workflow_ref": "acme/app/.github/workflows/deploy.yml@refs/heads/main",
}

# github_read is a GitHub Actions job with claims reading prod/app/token.
github_read(claims) := {
	"subject": {"id": "repo:acme/app:environment:production", "kind": "github-oidc", "claims": claims},
	"action": "read",
	"path": "prod/app/token",
	"store": {"created_by": "root"},
}

test_deploy_on_push_reads_app if {
	authz.allow with input as github_read(deploy_claims)
}

test_deploy_dispatched_by_hand_reads_app if {
	authz.allow with input as with_claims({"event_name": "workflow_dispatch"})
}

test_deploy_reads_only_app if {
	not authz.allow with input as object.union(github_read(deploy_claims), {"path": "prod/db/password"})
	not authz.allow with input as object.union(github_read(deploy_claims), {"action": "write"})
}

# with_claims is the deploy job's input with some claims changed.
with_claims(changes) := github_read(object.union(deploy_claims, changes))

# Jobs that run with ref = main, but on behalf of whoever opened a pull
# request (from a fork too), commented, or triggered the upstream workflow.
test_pull_request_target_denied if {
	not authz.allow with input as with_claims({"event_name": "pull_request_target"})
}

test_issue_comment_denied if {
	not authz.allow with input as with_claims({"event_name": "issue_comment"})
}

test_workflow_run_denied if {
	not authz.allow with input as with_claims({"event_name": "workflow_run"})
}

test_other_events_denied if {
	allowed := [event |
		some event in ["pull_request", "schedule", "repository_dispatch", "merge_group", "check_run"]
		authz.allow with input as with_claims({"event_name": event})
	]
	allowed == []
}

test_feature_branch_denied if {
	not authz.allow with input as with_claims({"ref": "refs/heads/x"})
}

test_other_workflow_denied if {
	not authz.allow with input as with_claims({"job_workflow_ref": "acme/app/.github/workflows/ci.yml@refs/heads/main"})
}

test_other_environment_denied if {
	not authz.allow with input as with_claims({"environment": "staging"})
}

test_no_environment_denied if {
	not authz.allow with input as github_read(object.remove(deploy_claims, ["environment"]))
}

# Same name, another repository: deleted and re-created, or a re-registered owner.
test_recreated_repository_denied if {
	not authz.allow with input as with_claims({"repository_id": "999999"})
}

test_missing_claims_denied if {
	allowed := [claim |
		some claim in ["repository_id", "event_name", "job_workflow_ref", "ref", "repository"]
		authz.allow with input as github_read(object.remove(deploy_claims, [claim]))
	]
	allowed == []
}

test_repository_and_ref_alone_denied if {
	not authz.allow with input as github_read({"repository": "acme/app", "ref": "refs/heads/main"})
}

test_a_token_with_the_claims_is_not_github if {
	not authz.allow with input as object.union(github_read(deploy_claims), {"subject": {"kind": "token"}})
}
