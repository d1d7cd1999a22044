// Command etcdbench measures what an etcd cluster itself serves on this
// machine, with no passman in the way: N concurrent clients issue one kind
// of request for a fixed duration and it prints requests/s and p99. It is
// the bound under passman's cluster figures (docs/cluster.md): a passman
// read is two range requests and a share of an audit write, a passman write
// a few range requests and a Txn.
//
//	etcdbench -endpoints http://127.0.0.1:2379 -op put,get,sget -clients 16
//
// Ops: put (a 200-byte Put, a raft round with its fsync on every member),
// get (a linearizable Get), sget (a serializable Get, served by the member
// at hand).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func main() {
	endpoints := flag.String("endpoints", "http://127.0.0.1:2379", "comma-separated client URLs")
	ops := flag.String("op", "put,get,sget", "comma-separated ops: put, get, sget")
	clients := flag.Int("clients", 16, "concurrent clients")
	duration := flag.Duration("duration", 5*time.Second, "duration per op")
	flag.Parse()
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*endpoints, ","), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdbench:", err)
		os.Exit(1)
	}
	defer cli.Close()
	val := strings.Repeat("v", 200)
	for _, op := range strings.Split(*ops, ",") {
		var do func(ctx context.Context, i, n int) error
		switch op {
		case "put":
			do = func(ctx context.Context, i, n int) error {
				_, err := cli.Put(ctx, fmt.Sprintf("etcdbench/%d/%d", i, n%100), val)
				return err
			}
		case "get", "sget":
			var opts []clientv3.OpOption
			if op == "sget" {
				opts = append(opts, clientv3.WithSerializable())
			}
			do = func(ctx context.Context, i, n int) error {
				_, err := cli.Get(ctx, fmt.Sprintf("etcdbench/%d/%d", i, n%100), opts...)
				return err
			}
		default:
			fmt.Fprintln(os.Stderr, "etcdbench: unknown op", op)
			os.Exit(2)
		}
		run(op, *clients, *duration, do)
	}
}

func run(op string, clients int, d time.Duration, do func(ctx context.Context, i, n int) error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			for n := 0; ctx.Err() == nil; n++ {
				t := time.Now()
				if err := do(ctx, i, n); err != nil {
					if ctx.Err() == nil {
						bad++
					}
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	p99 := time.Duration(0)
	if len(lat) > 0 {
		p99 = lat[len(lat)*99/100]
	}
	fmt.Printf("%-5s %3d clients: %8.0f req/s  p99 %6.1f ms  errors %d\n", op, clients, float64(len(lat))/el.Seconds(), float64(p99)/1e6, errs)
}
