# Team conventions on top of the bundled lint rules.
package passman.lint

# Owners are teams, never people: people leave.
deny contains {"rule": "owner_is_team", "path": s.path, "msg": msg} if {
	some s in input.secrets
	owner := object.get(s, "owner", "")
	owner != ""
	not startswith(owner, "team-")
	msg := sprintf("owner %q is not a team (want team-...)", [owner])
}

# The legacy FTP password predates rotation; its replacement is planned.
exception contains {"rule": "rotation_required", "path": "prod/legacy/ftp"}

# This team documents secrets elsewhere.
exception contains {"rule": "description_recommended"}
