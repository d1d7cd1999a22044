package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/keyring"
)

// BenchmarkClusterGet is benchParallelReads on one server of a store in
// the shared etcd cluster: beside BenchmarkGet's figures it shows what the
// etcd reads and the replication of every read's audit entry cost.
func BenchmarkClusterGet(b *testing.B) {
	kr, err := keyring.New(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	prefix := etcdtest.Prefix(b.Name())
	opts := clusterOpts(b, prefix, "a", kr)
	if _, err := core.Init(context.Background(), opts); err != nil {
		b.Fatal(err)
	}
	dir := opts.Dir
	opts = clusterOpts(b, prefix, "a", kr)
	opts.Dir = dir
	benchParallelReads(b, opts)
}
