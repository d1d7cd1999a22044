// Command etcdserver is the etcd server, built from its library: the etcd
// project's server module cannot be `go install`ed (its go.mod has replace
// directives), and this main is all its own main does. It is a module of
// its own so that etcd's dependencies stay out of passman's build; tests
// and the cluster scripts build it into .tools/etcd.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
