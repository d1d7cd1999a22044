//go:build unix

package rotation

// addPlatformConnectors adds connectors that need Unix process groups.
func addPlatformConnectors(reg Registry) { reg["exec"] = Exec }
