package fmtcheck

default allow := false

allow if input.user == "admin"
