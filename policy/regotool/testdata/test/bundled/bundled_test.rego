package bundled_test

import data.passman.builtin

test_admin_allowed if builtin.allow with input as {"role": "admin"}

test_guest_denied if not builtin.allow with input as {"role": "guest"}
