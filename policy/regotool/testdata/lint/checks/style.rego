package checks

maxItems = 10
