package grade

grade := "high" if input.score >= 90

grade := "mid" if {
	input.score >= 50
	input.score < 90
}

grade := "low" if input.score < 50
