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
