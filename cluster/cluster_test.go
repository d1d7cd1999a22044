package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/secret"
)

func put(ctx context.Context, t testing.TB, d *deployment, i int, path, v string) secret.VersionInfo {
	t.Helper()
	info, err := d.client(i, "").Put(ctx, path, secret.NewValue([]byte(v)), secret.PutOptions{})
	if err != nil {
		t.Fatalf("put %s on %s: %v", path, d.servers[i].id, err)
	}
	return info
}

func TestTwoServersOneTruth(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t, etcdtest.Shared(t), 2)
	for n := range 4 {
		w, r := n%2, 1-n%2
		v := "value-" + strconv.Itoa(n)
		info := put(ctx, t, d, w, "app/db", v)
		got, err := d.client(r, "").Get(ctx, "app/db", secret.Selector{})
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Value.Reveal()) != v || got.Info.Version != info.Version {
			t.Fatalf("written v%d on %s, read v%d on %s", info.Version, d.servers[w].id, got.Info.Version, d.servers[r].id)
		}
	}
	// A token revoked on one server is refused by the other within the
	// bound, although it had just authenticated there (and is cached).
	tok, info, err := d.client(0, "").CreateToken(ctx, secret.TokenRequest{Identity: "ci", Claims: map[string]string{"role": "root"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.client(1, tok).Get(ctx, "app/db", secret.Selector{}); err != nil {
		t.Fatal(err)
	}
	if err := d.client(0, "").RevokeToken(ctx, info.Accessor); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	c1 := d.client(1, tok)
	for {
		_, err := c1.Get(ctx, "app/db", secret.Selector{})
		if errors.Is(err, secret.ErrUnauthenticated) {
			break
		}
		if time.Since(revoked) > core.DefaultTokenCacheTTL {
			t.Fatalf("revoked token still accepted by the other server after %v: %v", time.Since(revoked), err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("revocation refused by the other server after %v", time.Since(revoked))
	for i := range d.servers {
		rep, err := d.client(i, "").VerifyAudit(ctx)
		if err != nil || !rep.OK {
			t.Fatalf("audit verify on %s: %+v, %v", d.servers[i].id, rep, err)
		}
	}
	d.verifyAll(ctx)
}

// TestFaultsUnderWriteLoad keeps writing through both servers while an
// etcd follower, the etcd leader and a passman server are SIGKILLed and
// restarted in turn. Every acknowledged write must be readable afterwards
// and every audit chain must verify.
func TestFaultsUnderWriteLoad(t *testing.T) {
	ec := etcdtest.New(t, etcdtest.Options{Members: 3})
	d := newDeployment(t, ec, 2)
	ctx := context.Background()

	const writers = 4
	acked := make([]map[string]int, writers) // path -> highest acknowledged version
	var stop atomic.Bool
	var okCount, errCount atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		acked[w] = map[string]int{}
		wg.Go(func() {
			clients := [2]*client.Client{d.client(0, ""), d.client(1, "")}
			for n := 0; !stop.Load(); n++ {
				i := (w + n) % 2
				path := fmt.Sprintf("app/w%d/k%d", w, n%5)
				c := clients[i]
				wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				info, err := c.Put(wctx, path, secret.NewValue([]byte(fmt.Sprintf("w%d-%d", w, n))), secret.PutOptions{})
				cancel()
				if err != nil {
					errCount.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				okCount.Add(1)
				if info.Version > acked[w][path] {
					acked[w][path] = info.Version
				}
			}
		})
	}
	phase := func(name string, fault func(), heal func()) {
		before := okCount.Load()
		fault()
		time.Sleep(1500 * time.Millisecond)
		heal()
		time.Sleep(500 * time.Millisecond)
		t.Logf("%s: %d writes acknowledged meanwhile, %d failed so far", name, okCount.Load()-before, errCount.Load())
	}
	time.Sleep(500 * time.Millisecond)
	leader, err := ec.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	follower := (leader + 1) % 3
	phase("etcd follower killed", func() { must(t, ec.Kill(follower)) }, func() { must(t, ec.Restart(ctx, follower)) })
	leader, err = ec.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	phase("etcd leader killed", func() { must(t, ec.Kill(leader)) }, func() { must(t, ec.Restart(ctx, leader)) })
	phase("passman server s1 killed", func() { d.servers[1].kill() }, func() { must(t, d.start(d.servers[1])) })
	stop.Store(true)
	wg.Wait()
	if okCount.Load() < 20 {
		t.Fatalf("only %d writes acknowledged under faults (%d failed)", okCount.Load(), errCount.Load())
	}
	// Every acknowledged write is there, read through either server.
	for w := range writers {
		for path, v := range acked[w] {
			got, err := d.client(w%2, "").Get(ctx, path, secret.Selector{})
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if got.Info.Version < v {
				t.Fatalf("%s: version %d acknowledged, %d read: an acknowledged write was lost", path, v, got.Info.Version)
			}
		}
	}
	for i := range d.servers {
		rep, err := d.client(i, "").VerifyAudit(ctx)
		if err != nil || !rep.OK {
			t.Fatalf("audit verify on %s: %+v, %v", d.servers[i].id, rep, err)
		}
	}
	d.verifyAll(ctx)
	t.Logf("%d writes acknowledged, %d failed during faults", okCount.Load(), errCount.Load())
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Linearizability: a register per path with versions. Puts, compare-and-
// sets (on the version) and gets from several clients through both servers
// must form a history some sequential order of the operations explains,
// each taking effect between its call and its return.
type regInput struct {
	op     string // put, cas, get
	path   string
	value  string
	expect int
}

type regOutput struct {
	ok      bool // cas: whether it applied
	value   string
	version int
}

type regState struct {
	value   string
	version int
}

var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			p := op.Input.(regInput).path
			if _, ok := by[p]; !ok {
				keys = append(keys, p)
			}
			by[p] = append(by[p], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return regState{} },
	Step: func(s, in, out any) (bool, any) {
		st, i, o := s.(regState), in.(regInput), out.(regOutput)
		switch i.op {
		case "put":
			if o.version != st.version+1 {
				return false, st
			}
			return true, regState{i.value, st.version + 1}
		case "cas":
			if !o.ok {
				return st.version != i.expect, st
			}
			if st.version != i.expect || o.version != st.version+1 {
				return false, st
			}
			return true, regState{i.value, st.version + 1}
		default:
			return o.value == st.value && o.version == st.version, st
		}
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(regInput), out.(regOutput)
		return fmt.Sprintf("%s(%s %q expect=%d) -> ok=%v %q v%d", i.op, i.path, i.value, i.expect, o.ok, o.value, o.version)
	},
}

func TestLinearizableAcrossServers(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t, etcdtest.Shared(t), 2)
	const clients, opsEach = 6, 25
	paths := []string{"app/lin/a", "app/lin/b"}
	start := time.Now()
	var mu sync.Mutex
	var history []porcupine.Operation
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			lastSeen := map[string]int{}
			clients := [2]*client.Client{d.client(0, ""), d.client(1, "")}
			for n := range opsEach {
				cl := clients[rng.IntN(2)]
				in := regInput{path: paths[rng.IntN(len(paths))], value: fmt.Sprintf("c%d-%d", c, n)}
				var out regOutput
				call := time.Since(start).Nanoseconds()
				switch r := rng.IntN(10); {
				case r < 3:
					in.op = "put"
					info, err := cl.Put(ctx, in.path, secret.NewValue([]byte(in.value)), secret.PutOptions{})
					if err != nil {
						t.Errorf("put: %v", err)
						return
					}
					out.version = info.Version
				case r < 6:
					in.op, in.expect = "cas", lastSeen[in.path]
					exp := in.expect
					info, err := cl.Put(ctx, in.path, secret.NewValue([]byte(in.value)), secret.PutOptions{CAS: &exp})
					switch {
					case errors.Is(err, secret.ErrConflict):
					case err != nil:
						t.Errorf("cas: %v", err)
						return
					default:
						out.ok, out.version = true, info.Version
					}
				default:
					in.op = "get"
					got, err := cl.Get(ctx, in.path, secret.Selector{})
					switch {
					case errors.Is(err, secret.ErrNotFound):
					case err != nil:
						t.Errorf("get: %v", err)
						return
					default:
						out.value, out.version = string(got.Value.Reveal()), got.Info.Version
						lastSeen[in.path] = got.Info.Version
					}
				}
				ret := time.Since(start).Nanoseconds()
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: c, Input: in, Output: out, Call: call, Return: ret})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	res, _ := porcupine.CheckOperationsVerbose(registerModel, history, 30*time.Second)
	if res != porcupine.Ok {
		t.Fatalf("history of %d operations is not linearizable (%s)", len(history), res)
	}
	t.Logf("%d operations over %d paths through 2 servers: linearizable", len(history), len(paths))
}

// The checker is not vacuous: a read of an older version after a newer one
// was read, by operations in sequence, is rejected.
func TestRegisterModelRejectsStaleRead(t *testing.T) {
	h := []porcupine.Operation{
		{ClientId: 0, Input: regInput{op: "put", path: "p", value: "1"}, Output: regOutput{version: 1}, Call: 0, Return: 10},
		{ClientId: 0, Input: regInput{op: "put", path: "p", value: "2"}, Output: regOutput{version: 2}, Call: 20, Return: 30},
		{ClientId: 1, Input: regInput{op: "get", path: "p"}, Output: regOutput{value: "1", version: 1}, Call: 40, Return: 50},
	}
	if porcupine.CheckOperations(registerModel, h) {
		t.Fatal("a stale read passed the linearizability check")
	}
	h[2].Call = 15
	if !porcupine.CheckOperations(registerModel, h[:2]) {
		t.Fatal("a sequential history failed the check")
	}
}

// Without etcd's quorum nothing is answered (fail closed: no read without
// its audit entry, no write without its commit); with it back, the
// servers serve again and their chains verify.
func TestQuorumLossFailsClosed(t *testing.T) {
	ec := etcdtest.New(t, etcdtest.Options{Members: 3})
	d := newDeployment(t, ec, 2)
	ctx := context.Background()
	put(ctx, t, d, 0, "app/q", "before")
	must(t, ec.Kill(1))
	must(t, ec.Kill(2))
	short, err := client.New(client.Options{Addr: d.servers[1].addr, Token: d.root, CACertFile: d.cert, Retries: -1, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := short.Get(ctx, "app/q", secret.Selector{}); err == nil {
		t.Fatalf("read answered without quorum: %q", got.Value.Reveal())
	}
	if _, err := short.Put(ctx, "app/q", secret.NewValue([]byte("lost")), secret.PutOptions{}); err == nil {
		t.Fatal("write acknowledged without quorum")
	}
	must(t, ec.Restart(ctx, 1))
	must(t, ec.Restart(ctx, 2))
	// The servers come back by themselves (their etcd client reconnects).
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := d.client(1, "").Get(ctx, "app/q", secret.Selector{})
		if err == nil {
			if v := string(got.Value.Reveal()); v != "before" && v != "lost" {
				t.Fatalf("read %q after quorum came back", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no read 30 s after quorum came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	put(ctx, t, d, 0, "app/q", "after")
	for i := range d.servers {
		rep, err := d.client(i, "").VerifyAudit(ctx)
		if err != nil || !rep.OK {
			t.Fatalf("audit verify on %s: %+v, %v", d.servers[i].id, rep, err)
		}
	}
	d.verifyAll(ctx)
}
