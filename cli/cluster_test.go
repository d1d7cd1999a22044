package cli

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/passman-dev/passman/internal/etcdtest"
)

// TestClusterScripts runs testdata/cluster against a real etcd cluster,
// named to the scripts by $ETCD_URL (a fresh prefix per script) and
// $ETCD_BASE (etcd://members, no prefix).
func TestClusterScripts(t *testing.T) {
	c := etcdtest.Shared(t)
	hosts := ""
	for i, ep := range c.Endpoints() {
		if i > 0 {
			hosts += ","
		}
		hosts += ep[len("http://"):]
	}
	p := scriptParams(false, func(e *testscript.Env) error {
		e.Setenv("ETCD_BASE", "etcd://"+hosts)
		e.Setenv("ETCD_URL", "etcd://"+hosts+"/"+etcdtest.Prefix("cli"))
		return nil
	})
	p.Dir = "testdata/cluster"
	testscript.Run(t, p)
}
