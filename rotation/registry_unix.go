//go:build unix

package rotation

// addPlatformConnectors adds the exec connector when opts enable it: it
// runs programs as the passman process's user, so a server offers it only
// for the programs its operator lists.
func addPlatformConnectors(reg Registry, opts ConnectorOptions) {
	if opts.ExecAnyProgram || len(opts.ExecPrograms) > 0 {
		reg["exec"] = Kind{New: execFactory(opts)}
	}
}
