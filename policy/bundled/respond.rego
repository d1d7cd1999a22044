# Bundled leak response policy: what to do when the scanner finds a managed
# secret's value in a repository.
#
# The engine validates every action (rotate, revoke_previous, notify,
# ignore) and returns one entry per action in execution order.
package passman.respond

# A secret tagged leak_response=ignore gets no automatic response: test
# fixtures and deliberately public values are tagged so.
ignored if input.secret.metadata.tags.leak_response == "ignore"

actions contains {"action": "ignore", "reason": reason} if {
	ignored
	reason := sprintf("%s is tagged leak_response=ignore", [input.secret.path])
}

# The live value leaked: replace it, then revoke the leaked one, which the
# rotation leaves labelled previous.
actions contains {"action": "rotate", "reason": reason} if {
	not ignored
	live
	reason := sprintf("v%d is the current value of %s", [input.secret.version, input.secret.path])
}

actions contains {"action": "revoke_previous", "reason": reason} if {
	not ignored
	live
	reason := sprintf("v%d stays usable as the previous version after rotation", [input.secret.version])
}

actions contains {"action": "notify", "reason": reason} if {
	not ignored
	live
	reason := sprintf("the current value of %s (v%d) leaked", [input.secret.path, input.secret.version])
}

# A previous or pending value is not what clients use now; rotating would
# not take the leaked value out of circulation, so a person decides.
actions contains {"action": "notify", "reason": reason} if {
	not ignored
	not live
	some stage in stages
	stage in {"previous", "pending"}
	reason := sprintf("v%d of %s leaked; it is the %s version, not the live value", [input.secret.version, input.secret.path, stage])
}

actions contains {"action": "notify", "reason": reason} if {
	not ignored
	count(stages) == 0
	reason := sprintf("v%d of %s leaked; it is an older version that is no longer staged, not the live value", [input.secret.version, input.secret.path])
}

stages := {stage | some stage in object.get(input.secret, "stages", [])}

live if "current" in stages
