package checks

limit := 3
default   permitted:=false
permitted if { input.level > limit }
