# Bundled authorization policy: who may do what.
#
# Nothing is allowed unless a rule says so. User modules in the policy
# directory add "allow if" rules to this package; a "deny contains msg if"
# rule anywhere in the package overrides every allow.
package passman.authz

default allow := false

# The store's creator may do everything, so a fresh store never locks out the
# person who made it. A user deny rule still overrides this.
allow if store_creator

reasons contains msg if {
	store_creator
	msg := sprintf("%s created the store and may do everything", [input.subject.id])
}

store_creator if {
	input.subject.kind == "user"
	input.store.created_by != ""
	input.subject.id == input.store.created_by
}

# The server's scheduler runs due rotations, revokes previous versions whose
# grace period is over and reaps expired token records. Its subject exists
# only inside the server (no login yields kind "scheduler"). On secrets it
# may act only where someone allowed to configure rotation named a
# connection: it never touches a secret without a rotation spec, whatever
# its code asks. "admin" is for token reaping, the only admin call it makes.
# A user deny rule overrides this, as it does every allow.
allow if scheduler_may

reasons contains "the server's scheduler runs configured rotations and reaps expired tokens" if scheduler_may

scheduler_may if {
	input.subject.kind == "scheduler"
	input.action in {"list", "admin"}
}

scheduler_may if {
	input.subject.kind == "scheduler"
	input.action in {"read", "write", "rotate", "destroy"}
	input.secret.rotation.connection != ""
}
