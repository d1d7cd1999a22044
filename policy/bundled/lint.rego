# Bundled lint policy: what a compliant secret looks like.
#
# Conftest-style: every deny and warn is a finding object
# {"rule": ..., "path": ..., "msg": ...}. User modules add rules to this
# package and silence findings with "exception contains {"rule": r}" (all
# paths) or "exception contains {"rule": r, "path": p}" (one secret).
# Thresholds come from data.passman.config (defaults in config.json).
package passman.lint

import data.passman.config

deny contains finding("owner_required", s, "owner is required: name the team or person who answers for this secret") if {
	some s in input.secrets
	object.get(s, "owner", "") == ""
}

deny contains finding("rotation_required", s, "production secret needs a rotation period") if {
	some s in input.secrets
	production(s.path)
	object.get(s, ["rotation", "period"], "") == ""
}

deny contains finding("rotation_max", s, msg) if {
	some s in input.secrets
	production(s.path)
	period := object.get(s, ["rotation", "period"], "")
	period != ""
	time.parse_duration_ns(period) > time.parse_duration_ns(config.max_rotation_period)
	msg := sprintf("rotation period %s exceeds the maximum %s for production secrets", [period, config.max_rotation_period])
}

deny contains finding("no_plaintext_value", s, "value is written in plaintext in the manifest: remove it and use generate, or set it with passman secret put") if {
	some s in input.secrets
	s.value_present == true
}

deny contains finding("generator_strength", s, msg) if {
	some s in input.secrets
	s.generate.length < config.min_generated_length
	msg := sprintf("generated length %d is below the minimum %d", [s.generate.length, config.min_generated_length])
}

deny contains finding("generator_strength", s, msg) if {
	some s in input.secrets
	generate := s.generate
	n := count({c | some c in object.get(generate, "classes", [])})
	n < config.min_generated_classes
	msg := sprintf("generator uses %d character classes, want at least %d", [n, config.min_generated_classes])
}

deny contains finding("tags_required", s, msg) if {
	some s in input.secrets
	some prefix, names in config.required_tags
	startswith(s.path, prefix)
	some name in names
	object.get(s, ["tags", name], "") == ""
	msg := sprintf("tag %q is required for secrets under %s", [name, prefix])
}

warn contains finding("description_recommended", s, "a description is recommended: say what the secret is for and who uses it") if {
	some s in input.secrets
	object.get(s, "description", "") == ""
}

# production holds when path starts with one of the configured prefixes.
production(path) if {
	some prefix in config.production_prefixes
	startswith(path, prefix)
}

# finding builds a finding object; the manifest line, when known, ends the
# message so a reader can jump to it.
finding(rule, s, msg) := {"rule": rule, "path": s.path, "msg": with_line(s, msg)}

with_line(s, msg) := sprintf("%s (line %d)", [msg, s.line]) if s.line > 0

else := msg
