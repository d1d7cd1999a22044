package rotation

// Connectors returns the built-in connectors by name.
func Connectors() Registry {
	return Registry{
		"generated": Generated,
		"postgres":  Postgres,
	}
}
