// Package cluster holds the end-to-end tests of several passman servers
// serving one store in etcd: real etcd members (internal/etcdtest) and
// real passman server processes, reads and writes across servers, faults
// under write load (etcd members, the etcd leader and passman servers
// SIGKILLed and restarted) and a linearizability check of a concurrent
// history. It has no code of its own; see docs/cluster.md.
package cluster
