package authz_test

import data.authz

test_admin_allowed if authz.allow with input as {"user": "admin"}

test_bob_reads if authz.allow with input as {"user": "bob", "action": "read"}

test_bob_writes if {
	print("checking bob's write")
	authz.allow with input as {"user": "bob", "action": "write"}
}

test_conflicting_labels if authz.label == "x" with input as {"flag": true}

test_divide_by_zero if authz.ratio == 0 with input as {"a": 1, "b": 0}

todo_test_later if false
