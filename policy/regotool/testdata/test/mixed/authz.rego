package authz

default allow := false

allow if input.user == "admin"

allow if {
	input.user == "bob"
	input.action == "read"
}

ratio := input.a / input.b

label := "x" if input.flag

label := "y" if input.flag
