package etcd

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/store"
)

// Commits go to the member that leads, and follow it when it moves or
// dies: a follower sees none of them while the route is known.
func TestCommitsGoToLeader(t *testing.T) {
	ec, d := ownCluster(t)
	ctx := context.Background()
	n := 0
	put := func() {
		t.Helper()
		n++
		err := d.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("s/k"), strconv.AppendInt(nil, int64(n), 10)) })
		if err != nil {
			t.Fatalf("put %d: %v", n, err)
		}
	}
	routed := func(why string) int { t.Helper(); return routeToLeader(t, why, ec, d, put) }
	var leader int
	for try := 1; ; try++ {
		leader = routed("at first")
		before := txnsHandled(t, ec)
		for range 20 {
			put()
		}
		after := txnsHandled(t, ec)
		if now, err := ec.Leader(ctx); (err != nil || now != leader) && try < 3 {
			// An election on a busy machine moved the lead meanwhile.
			continue
		}
		for i := range after {
			got := after[i] - before[i]
			if i == leader && got < 20 || i != leader && got != 0 {
				t.Fatalf("member %d (leader %d) handled %d of 20 commits", i, leader, got)
			}
		}
		break
	}

	// The leader hands its lead to another member: the next commits' term
	// is new, and the route finds it.
	to := (leader + 1) % 3
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ec.Member(leader).ClientURL}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	st, err := cli.Status(ctx, ec.Member(to).ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.MoveLeader(ctx, st.Header.MemberId); err != nil {
		t.Fatal(err)
	}
	if got := routed("after the lead moved"); got != to {
		t.Fatalf("routed to member %d, the lead moved to %d", got, to)
	}

	// The leader dies: commits go on (through the other members while the
	// route is unknown), and the route finds the new leader.
	if err := ec.Kill(to); err != nil {
		t.Fatal(err)
	}
	if _, err := ec.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if got := routed("after the leader died"); got == to {
		t.Fatalf("routed to member %d, which was killed", got)
	}
	if got := read(t, d, "s/k"); got != strconv.Itoa(n) {
		t.Fatalf("s/k = %s after %d acknowledged puts", got, n)
	}
}

// A leader that froze with its connections up answers nothing: a commit
// sent to it gives up after routedTimeout, not gRPC's keepalive (half a
// minute), and later commits stop being sent there once it has run for
// stallAfter.
func TestCommitsLeaveAFrozenLeader(t *testing.T) {
	old := routedTimeout
	routedTimeout = 3 * time.Second
	t.Cleanup(func() { routedTimeout = old })
	ec, d := ownCluster(t)
	ctx := context.Background()
	put := func() error {
		return d.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("s/k"), []byte("v")) })
	}
	leader := routeToLeader(t, "at first", ec, d, func() {
		if err := put(); err != nil {
			t.Fatal(err)
		}
	})
	if err := ec.Freeze(leader); err != nil {
		t.Fatal(err)
	}
	defer ec.Thaw(leader)
	frozen := ec.Member(leader).ClientURL
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- put() }()
	time.Sleep(stallAfter + 500*time.Millisecond)
	if got := d.route.endpoint(); got == frozen {
		t.Errorf("after %v commits still go to the frozen leader", time.Since(start))
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a commit to a frozen leader succeeded")
		}
		if took := time.Since(start); took > routedTimeout+2*time.Second {
			t.Fatalf("the commit gave up after %v, want about %v", took, routedTimeout)
		}
	case <-time.After(routedTimeout + 5*time.Second):
		t.Fatal("a commit to a frozen leader still waits")
	}
}

// ownCluster is a 3-member cluster of the test's own, whose members it
// may stop or kill, and a store over it.
func ownCluster(t *testing.T) (*etcdtest.Cluster, *DB) {
	t.Helper()
	ec := etcdtest.New(t, etcdtest.Options{Members: 3})
	d, err := Open(context.Background(), Config{Endpoints: ec.Endpoints(), Prefix: etcdtest.Prefix(t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return ec, d
}

// routeToLeader commits with put until d's route names the leader's
// endpoint, and returns the leader's index.
func routeToLeader(t *testing.T, why string, ec *etcdtest.Cluster, d *DB, put func()) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		put()
		i, err := ec.Leader(context.Background())
		if err == nil && d.route.endpoint() == ec.Member(i).ClientURL {
			return i
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: commits go to %q, the leader is member %d (%v)", why, d.route.endpoint(), i, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// txnsHandled is how many Txn requests each member answered.
func txnsHandled(t *testing.T, ec *etcdtest.Cluster) []int {
	t.Helper()
	out := make([]int, len(ec.Members()))
	for i, m := range ec.Members() {
		resp, err := http.Get(m.ClientURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			l := sc.Text()
			if strings.HasPrefix(l, "grpc_server_handled_total{") && strings.Contains(l, `grpc_method="Txn"`) {
				var v float64
				if _, err := fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v); err != nil {
					t.Fatal(err)
				}
				out[i] += int(v)
			}
		}
		resp.Body.Close()
	}
	return out
}
