package grade_test

import data.grade

test_high if grade.grade == "high" with input as {"score": 95}

test_mid if grade.grade == "mid" with input as {"score": 60}

test_low if grade.grade == "low" with input as {"score": 10}
