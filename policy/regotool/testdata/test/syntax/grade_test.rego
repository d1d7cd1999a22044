package grade_test

import data.grade

test_high if {
	grade.grade == 
}
