package rotation

// Connectors returns the built-in connectors by name.
func Connectors() Registry {
	reg := Registry{
		"generated": Generated,
		"postgres":  Postgres,
		"github":    GitHub,
		"webhook":   Webhook,
	}
	addPlatformConnectors(reg)
	return reg
}
