package core

import (
	"os"
	"os/user"
	"strconv"

	"github.com/passman-dev/passman/rotation"
)

// OSActor names who works on a store opened on its own host (the CLI, the
// Terraform provider's local mode): the OS user. It is deliberately not
// configurable, and not $USER, which anyone can set: an audit log whose
// actor anyone can choose records nothing, and the bundled policy makes
// the store's creator admin.
func OSActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid:" + strconv.Itoa(os.Getuid())
}

// HostConnectors are the rotation connectors of a store opened on its own
// host by its administrator, who runs exec connections' programs as
// themselves; a server narrows them (server.Run).
func HostConnectors() rotation.Registry {
	return rotation.Connectors(rotation.ConnectorOptions{ExecAnyProgram: true})
}
