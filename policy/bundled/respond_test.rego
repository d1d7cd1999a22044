package passman.respond_test

import data.passman.respond

leak(stages) := {
	"finding": {"rule": "generic-api-key", "file": "app/config.go", "line": 12},
	"secret": {"path": "prod/db/password", "version": 3, "stages": stages, "state": "active"},
}

actions_for(stages) := {a.action | some a in actions} if {
	actions := respond.actions with input as leak(stages)
}

test_current_version_is_rotated_and_revoked if {
	actions_for(["current"]) == {"rotate", "revoke_previous", "notify"}
}

test_previous_version_only_notifies if {
	actions_for(["previous"]) == {"notify"}
	respond.actions == {{
		"action": "notify",
		"reason": "v3 of prod/db/password leaked; it is the previous version, not the live value",
	}} with input as leak(["previous"])
}

test_pending_version_only_notifies if {
	actions_for(["pending"]) == {"notify"}
}

test_older_version_only_notifies if {
	actions_for([]) == {"notify"}
}

test_ignore_tag_wins if {
	ignored := object.union(leak(["current"]), {"secret": {"metadata": {"tags": {"leak_response": "ignore"}}}})
	respond.actions == {{
		"action": "ignore",
		"reason": "prod/db/password is tagged leak_response=ignore",
	}} with input as ignored
}
