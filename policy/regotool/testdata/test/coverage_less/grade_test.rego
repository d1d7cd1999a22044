package grade_test

import data.grade

test_high if grade.grade == "high" with input as {"score": 95}
