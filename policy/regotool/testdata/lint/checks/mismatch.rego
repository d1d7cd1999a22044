package elsewhere

answer := 42
