package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/backup"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/secret"
)

// Scheduler settings of the tests' servers: the failover bound is
// electionTTL + schedInterval.
const (
	schedInterval = time.Second
	electionTTL   = 2 * time.Second
)

// addSchedulingServer is addServer with the scheduler enabled.
func (d *deployment) addSchedulingServer(id string) *serverProc {
	d.t.Helper()
	return d.addServerWith(id, fmt.Sprintf(`scheduler: {enabled: true, interval: %s, election_ttl: %s}
rotation: {exec_programs: [/bin/sh]}
`, schedInterval, electionTTL))
}

// liveLeader is the leader server i's election names now.
func liveLeader(ctx context.Context, t *testing.T, d *deployment, i int) string {
	t.Helper()
	st, err := d.client(i, "").SchedulerStatus(ctx)
	if err != nil {
		t.Fatalf("scheduler status on %s: %v", d.servers[i].id, err)
	}
	if !st.Live {
		t.Fatalf("%s answered the recorded leader, not the election's", d.servers[i].id)
	}
	return st.Leader
}

// TestSchedulerFailover: two server processes over a store in a real
// three-member etcd cluster, both with the scheduler on. Both name the same
// leader; secrets due every 3 s rotate without anyone asking; the leader is
// SIGKILLed and the other server leads within TTL + interval and keeps
// rotating; no secret is ever rotated twice for one period (two versions
// closer than the period would be a double run), none is left pending, and
// every audit chain, the dead server's included, verifies.
func TestSchedulerFailover(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t, etcdtest.Shared(t), 0)
	d.addSchedulingServer("s0")
	d.addSchedulingServer("s1")

	var leader string
	waitUntil(t, 20*time.Second, "a leader", func() bool {
		leader = liveLeader(ctx, t, d, 0)
		return leader != ""
	})
	if other := liveLeader(ctx, t, d, 1); other != leader {
		t.Fatalf("s0 names %q the leader, s1 %q", leader, other)
	}
	li := map[string]int{"s0": 0, "s1": 1}[leader]
	fi := 1 - li

	const period = 3 * time.Second
	paths := []string{"app/a", "app/b", "app/c"}
	p := secret.Duration(period)
	for _, path := range paths {
		md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: secret.GeneratedConnection, Length: 32}, RotationPeriod: &p}
		if _, err := d.client(fi, "").Put(ctx, path, secret.NewValue([]byte("initial value")), secret.PutOptions{Metadata: md}); err != nil {
			t.Fatal(err)
		}
	}
	versions := func(path string) int {
		s, err := d.client(fi, "").Describe(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		return s.CurrentVersion
	}
	waitUntil(t, 30*time.Second, "the first scheduled rotations", func() bool {
		return versions("app/a") >= 2 && versions("app/b") >= 2 && versions("app/c") >= 2
	})

	d.servers[li].kill()
	killed := time.Now()
	before := map[string]int{}
	for _, path := range paths {
		before[path] = versions(path)
	}
	var took time.Duration
	waitUntil(t, electionTTL+schedInterval+10*time.Second, "the other server to lead", func() bool {
		if liveLeader(ctx, t, d, fi) == d.servers[fi].id {
			took = time.Since(killed)
			return true
		}
		return false
	})
	t.Logf("%s leads %s after %s was killed (bound %s)", d.servers[fi].id, took.Round(time.Millisecond), leader, electionTTL+schedInterval)
	if slack := 2 * time.Second; took > electionTTL+schedInterval+slack {
		t.Errorf("failover took %s, over the bound %s (+%s)", took, electionTTL+schedInterval, slack)
	}
	waitUntil(t, 30*time.Second, "rotations after the failover", func() bool {
		for _, path := range paths {
			if versions(path) <= before[path] {
				return false
			}
		}
		return true
	})

	for _, path := range paths {
		s, err := d.client(fi, "").Describe(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if st := s.Metadata.RotationStatus; st == nil || st.State == secret.RotationFailed || st.State == secret.RotationRolledBack {
			t.Errorf("%s: rotation status %+v", path, st)
		}
		for i := 1; i < len(s.Versions); i++ {
			prev, cur := s.Versions[i-1], s.Versions[i]
			if gap := cur.CreatedAt.Sub(prev.CreatedAt); gap < period-500*time.Millisecond {
				t.Errorf("%s: v%d created %s after v%d: rotated twice within one period", path, cur.Version, gap, prev.Version)
			}
		}
		for _, v := range s.Versions {
			if v.HasStage(secret.StagePending) && s.Metadata.RotationStatus.State != secret.RotationInProgress {
				t.Errorf("%s: v%d left pending", path, v.Version)
			}
		}
	}
	st, err := d.client(fi, "").SchedulerStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Runs) == 0 || st.Runs[0].Node != d.servers[fi].id {
		t.Errorf("the last recorded run is not the new leader's: %+v", st.Runs)
	}
	d.verifyAll(ctx)
}

// TestClusterBackup: an admin backs up the etcd-backed store through one
// server while the other takes writes; the backup (a logical export at one
// revision) restores into a bbolt store that opens with the key, verifies
// its audit chain and holds every write acknowledged before it began.
func TestClusterBackup(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t, etcdtest.Shared(t), 2)
	var acked []string
	for i := range 5 {
		path := fmt.Sprintf("app/k%d", i)
		put(ctx, t, d, i%2, path, "value of "+path)
		acked = append(acked, path)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = d.client(1, "").Put(ctx, "load/x", secret.NewValue(fmt.Appendf(nil, "load %d", n)), secret.PutOptions{})
		}
	}()
	var buf bytes.Buffer
	h, err := d.client(0, "").Backup(ctx, &buf, backup.Options{})
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if h.Source != "etcd" || h.Revision == 0 || h.ServerID != "s0" {
		t.Fatalf("header = %+v", h)
	}
	dst := core.Options{Dir: filepath.Join(t.TempDir(), "restored"), Keyring: d.kr, Actor: "admin", AuditSync: audit.SyncWrite}
	if _, err := core.Restore(ctx, dst, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if r, err := core.VerifyDirWithKeyring(ctx, dst.Dir, d.kr); err != nil || !r.OK {
		t.Fatalf("audit verify of the restored store: %+v %v", r, err)
	}
	l, err := core.Open(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, path := range acked {
		v, err := l.Get(ctx, path, secret.Selector{})
		if err != nil || string(v.Value.Reveal()) != "value of "+path {
			t.Errorf("%s after restore: %v", path, err)
		}
	}
}

// hangScript is an exec connection's program: it logs each step with the
// version and value it was given, and the first set after the test made
// the file HANG hangs there, so the server running it can be killed
// mid-rotation.
const hangScript = `v=$(cat); echo "$1 v$PASSMAN_VERSION $v" >> "$0.log"
if [ "$1" = set ] && [ -e "$0.hang" ]; then rm "$0.hang"; echo hung >> "$0.log"; sleep 30; fi`

// TestLeaderKilledMidRotationCluster: the leading server is SIGKILLed
// while its scheduled rotation's set step is running on the target; the
// other server leads, finds the rotation in progress in the store and
// resumes it: the target gets the same pending value again, never a
// second new one, and the secret ends with that one new version current.
func TestLeaderKilledMidRotationCluster(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t, etcdtest.Shared(t), 0)
	d.addSchedulingServer("s0")
	d.addSchedulingServer("s1")
	base := filepath.Join(d.dir, "target")
	if err := os.WriteFile(base+".hang", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	args := fmt.Sprintf(`["-c", %q, %q]`, hangScript, base)
	admin := d.client(0, "")
	if _, err := admin.PutConnection(ctx, secret.Connection{Name: "hang", Connector: "exec", Config: map[string]string{"command": "/bin/sh", "args": args, "timeout": "60s"}, AllowedPaths: []string{"app/*"}}); err != nil {
		t.Fatal(err)
	}
	const period = 3 * time.Second
	p := secret.Duration(period)
	md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: "hang", Length: 32}, RotationPeriod: &p}
	if _, err := admin.Put(ctx, "app/hang", secret.NewValue([]byte("initial value")), secret.PutOptions{Metadata: md}); err != nil {
		t.Fatal(err)
	}
	readLog := func() string {
		b, _ := os.ReadFile(base + ".log")
		return string(b)
	}
	waitUntil(t, 30*time.Second, "the leader's set to hang", func() bool { return strings.Contains(readLog(), "hung") })
	leader := liveLeader(ctx, t, d, 0)
	li := map[string]int{"s0": 0, "s1": 1}[leader]
	fi := 1 - li
	d.servers[li].kill()

	var s secret.Secret
	waitUntil(t, electionTTL+schedInterval+20*time.Second, "the rotation to be resumed", func() bool {
		var err error
		if s, err = d.client(fi, "").Describe(ctx, "app/hang"); err != nil {
			t.Fatal(err)
		}
		st := s.Metadata.RotationStatus
		return st != nil && st.State == secret.RotationSucceeded && s.CurrentVersion == 2
	})
	if st := s.Metadata.RotationStatus; st.Trigger != "due" {
		t.Errorf("trigger %q", st.Trigger)
	}
	runs, err := d.client(fi, "").SchedulerStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resumed := false
	for _, r := range runs.Runs {
		resumed = resumed || len(r.Resumed) > 0 && r.Resumed[0] == "app/hang" && r.Node == d.servers[fi].id
	}
	if !resumed {
		t.Errorf("no run of %s resumed app/hang: %+v", d.servers[fi].id, runs.Runs)
	}
	cur, err := d.client(fi, "").Get(ctx, "app/hang", secret.Selector{Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	var sets2 int
	for _, line := range strings.Split(strings.TrimSpace(readLog()), "\n") {
		step, rest, _ := strings.Cut(line, " ")
		if step != "set" || !strings.HasPrefix(rest, "v2 ") {
			continue
		}
		sets2++
		if rest != "v2 "+string(cur.Value.Reveal()) {
			t.Errorf("the target was set to another value for v2: %q", line)
		}
	}
	if sets2 < 2 {
		t.Errorf("v2 was set %d times: want the dead leader's set and the resumed one\n%s", sets2, readLog())
	}
	if strings.Contains(readLog(), "set v3 ") {
		if s, _ := d.client(fi, "").Describe(ctx, "app/hang"); len(s.Versions) > 2 && s.Versions[2].CreatedAt.Sub(s.Versions[1].CreatedAt) < period-500*time.Millisecond {
			t.Error("a second rotation started within the period")
		}
	}
	d.verifyAll(ctx)
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
