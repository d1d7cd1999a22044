package etcd

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Watch calls fn with the store key of every change under prefix as it
// commits, until ctx ends, so that a server drops what it cached when
// another server changes it. fn(nil, true) says the watch (re)started or
// broke (a lost leader, a compacted revision, a reconnect): changes may
// have been missed, and the caller must forget everything it cached under
// prefix. It is called first once the watch is in place, so nothing read
// before can be missed. fn runs on Watch's goroutine, one call at a time.
func (d *DB) Watch(ctx context.Context, prefix []byte, fn func(key []byte, reset bool)) {
	full := d.prefix + string(prefix)
	for ctx.Err() == nil {
		d.watchOnce(ctx, full, fn)
		fn(nil, true)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *DB) watchOnce(ctx context.Context, full string, fn func(key []byte, reset bool)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// WithRequireLeader: a member cut off from the leader ends the watch
	// instead of keeping it open and silent.
	wch := d.cli.Watch(clientv3.WithRequireLeader(ctx), full, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	plen := len(d.prefix)
	for resp := range wch {
		if resp.Err() != nil || resp.Canceled {
			return
		}
		if resp.Created {
			fn(nil, true)
			continue
		}
		for _, ev := range resp.Events {
			fn(ev.Kv.Key[plen:], false)
		}
	}
}
