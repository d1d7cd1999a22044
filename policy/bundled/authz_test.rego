package passman.authz_test

import data.passman.authz

creator_input := {
	"subject": {"id": "alice", "kind": "user"},
	"action": "destroy",
	"path": "prod/db/password",
	"store": {"created_by": "alice"},
	"time": "2026-01-02T03:04:05Z",
}

test_creator_may_do_everything if {
	every action in ["read", "write", "list", "delete", "destroy", "rotate", "admin"] {
		authz.allow with input as object.union(creator_input, {"action": action})
	}
	authz.reasons == {"alice created the store and may do everything"} with input as creator_input
}

test_other_user_denied if {
	not authz.allow with input as object.union(creator_input, {"subject": {"id": "bob", "kind": "user"}})
	count(authz.reasons) == 0 with input as object.union(creator_input, {"subject": {"id": "bob", "kind": "user"}})
}

test_token_named_like_creator_denied if {
	not authz.allow with input as object.union(creator_input, {"subject": {"id": "alice", "kind": "token"}})
}

test_empty_creator_matches_nobody if {
	not authz.allow with input as object.union(creator_input, {"subject": {"id": "", "kind": "user"}, "store": {"created_by": ""}})
}

scheduler_input := {
	"subject": {"id": "scheduler", "kind": "scheduler"},
	"action": "rotate",
	"path": "prod/db/password",
	"store": {"created_by": "alice"},
	"time": "2026-01-02T03:04:05Z",
	"secret": {"rotation": {"connection": "pg"}},
}

test_scheduler_acts_on_configured_rotations if {
	every action in ["read", "write", "rotate", "destroy"] {
		authz.allow with input as object.union(scheduler_input, {"action": action})
	}
	authz.allow with input as object.union(scheduler_input, {"action": "list", "path": ""})
}

test_scheduler_never_touches_unconfigured_secrets if {
	unconfigured := object.remove(scheduler_input, ["secret"])
	every action in ["read", "write", "rotate", "destroy"] {
		not authz.allow with input as object.union(unconfigured, {"action": action})
	}
	not authz.allow with input as object.union(unconfigured, {"secret": {"owner": "x"}})
}

test_scheduler_may_not_configure_rotation if {
	not authz.allow with input as object.union(scheduler_input, {"action": "configure_rotation"})
}

test_scheduler_name_on_another_kind_grants_nothing if {
	not authz.allow with input as object.union(scheduler_input, {"subject": {"id": "scheduler", "kind": "token"}})
}
