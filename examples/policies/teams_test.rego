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

test_main_branch_reads_app if {
	authz.allow with input as {
		"subject": {
			"id": "repo:acme/app:ref:refs/heads/main",
			"kind": "github-oidc",
			"claims": {"repository": "acme/app", "ref": "refs/heads/main"},
		},
		"action": "read",
		"path": "prod/app/token",
		"store": {"created_by": "root"},
	}
}

test_feature_branch_denied if {
	not authz.allow with input as {
		"subject": {
			"id": "repo:acme/app:ref:refs/heads/x",
			"kind": "github-oidc",
			"claims": {"repository": "acme/app", "ref": "refs/heads/x"},
		},
		"action": "read",
		"path": "prod/app/token",
		"store": {"created_by": "root"},
	}
}
