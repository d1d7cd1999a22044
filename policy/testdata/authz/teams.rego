# Team members may read, write and list under their team's prefix.
package passman.authz

teams := {
	"db": {"members": {"dana", "dave"}, "prefix": "prod/db/"},
	"app": {"members": {"ann"}, "prefix": "prod/app/"},
}

team_grant contains [name, team.prefix] if {
	input.subject.kind == "user"
	input.action in {"read", "write", "list"}
	some name, team in teams
	input.subject.id in team.members
	startswith(input.path, team.prefix)
}

allow if count(team_grant) > 0

reasons contains msg if {
	some [name, prefix] in team_grant
	msg := sprintf("%s is in team %s, which owns %s", [input.subject.id, name, prefix])
}

# CI tokens may read development secrets. No reasons rule: an allow may
# come without reasons.
allow if {
	input.subject.kind == "token"
	input.action in {"read", "list"}
	startswith(input.path, "dev/")
}
