package checks

import data.other

deny contains msg if {
	some item
	msg := input.message
}
