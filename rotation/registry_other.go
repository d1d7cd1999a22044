//go:build !unix

package rotation

// addPlatformConnectors adds nothing: the exec connector kills its
// command's process group on timeout, which needs Unix.
func addPlatformConnectors(Registry, ConnectorOptions) {}
