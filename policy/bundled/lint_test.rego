package passman.lint_test

import data.passman.lint

good := {
	"path": "prod/db/password",
	"owner": "team-db",
	"description": "primary database password",
	"tags": {"env": "prod"},
	"generate": {"length": 32, "classes": ["upper", "lower", "digits"]},
	"rotation": {"period": "720h0m0s"},
}

deny_for(secret) := findings if {
	findings := lint.deny with input as {"source": "manifest", "secrets": [secret]}
}

warn_for(secret) := findings if {
	findings := lint.warn with input as {"source": "manifest", "secrets": [secret]}
}

test_compliant_secret_passes if {
	count(deny_for(good)) == 0
	count(warn_for(good)) == 0
}

test_owner_required if {
	deny_for(json.remove(good, ["owner"])) == {{
		"rule": "owner_required",
		"path": "prod/db/password",
		"msg": "owner is required: name the team or person who answers for this secret",
	}}
}

test_rotation_required_only_in_production if {
	deny_for(json.remove(good, ["rotation"])) == {{
		"rule": "rotation_required",
		"path": "prod/db/password",
		"msg": "production secret needs a rotation period",
	}}
	count(deny_for(object.union(json.remove(good, ["rotation"]), {"path": "dev/db/password"}))) == 0
}

test_rotation_max if {
	deny_for(object.union(good, {"rotation": {"period": "4320h0m0s"}})) == {{
		"rule": "rotation_max",
		"path": "prod/db/password",
		"msg": "rotation period 4320h0m0s exceeds the maximum 2160h for production secrets",
	}}
	count(deny_for(object.union(good, {"rotation": {"period": "2160h0m0s"}}))) == 0
}

test_rotation_max_follows_config if {
	count(deny_for(good)) == 1 with data.passman.config.max_rotation_period as "168h"
}

test_generator_strength_needs_a_generate_block if {
	count(deny_for(json.remove(good, ["generate"]))) == 0
}

test_no_plaintext_value if {
	deny_for(object.union(good, {"value_present": true, "line": 7})) == {{
		"rule": "no_plaintext_value",
		"path": "prod/db/password",
		"msg": "value is written in plaintext in the manifest: remove it and use generate, or set it with passman secret put (line 7)",
	}}
}

test_generator_strength if {
	deny_for(object.union(good, {"generate": {"length": 8, "classes": ["digits"]}})) == {
		{
			"rule": "generator_strength",
			"path": "prod/db/password",
			"msg": "generated length 8 is below the minimum 16",
		},
		{
			"rule": "generator_strength",
			"path": "prod/db/password",
			"msg": "generator uses 1 character classes, want at least 2",
		},
	}
}

test_tags_required if {
	deny_for(json.remove(good, ["tags"])) == {{
		"rule": "tags_required",
		"path": "prod/db/password",
		"msg": "tag \"env\" is required for secrets under prod/",
	}}
}

test_description_recommended if {
	warn_for(json.remove(good, ["description"])) == {{
		"rule": "description_recommended",
		"path": "prod/db/password",
		"msg": "a description is recommended: say what the secret is for and who uses it",
	}}
}
