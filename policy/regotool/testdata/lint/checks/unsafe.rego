package checks

allow if {
	input.user == name
}
