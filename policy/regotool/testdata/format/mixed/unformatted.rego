package fmtcheck

levels   := {"low":1,"high":   2}
high if { input.level == levels.high }
