# Nobody destroys production versions, not even the store's creator.
package passman.authz

deny contains msg if {
	input.action == "destroy"
	startswith(input.path, "prod/")
	msg := sprintf("destroying production secrets is forbidden: %s", [input.path])
}
