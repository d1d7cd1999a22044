package slow_test

test_slow if count([x | some x in numbers.range(1, 100000000)]) > 0
