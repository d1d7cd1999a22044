package core_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/crashtest"
	"github.com/passman-dev/passman/secret"
)

const crashChildEnv = "PASSMAN_CRASH_CHILD_DIR"

// TestCrashChild is the child half of TestCrashSafety: once the store is
// open it prints "ready", then writes (and reads) in a loop and prints
// "ack PATH VERSION VALUE" after each write returns, until it is killed.
// It does nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("child process of TestCrashSafety")
	}
	ctx := context.Background()
	l, err := core.Open(ctx, core.Options{Dir: dir, Actor: "alice", AuditSync: audit.SyncFsync})
	if err != nil {
		fmt.Printf("open failed: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	keep := secret.MaxVersionsLimit
	for i := 0; ; i++ {
		path := fmt.Sprintf("crash/k%02d", rand.IntN(20))
		value := fmt.Sprintf("value-%d-%d", os.Getpid(), i)
		info, err := l.Put(ctx, path, secret.NewValue([]byte(value)), secret.PutOptions{Metadata: &secret.MetadataUpdate{MaxVersions: &keep}})
		if err != nil {
			fmt.Printf("put failed: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("ack %s %d %s\n", path, info.Version, value)
		if i%3 == 0 {
			if _, err := l.Get(ctx, path, secret.Selector{}); err != nil {
				fmt.Printf("get failed: %v\n", err)
				os.Exit(1)
			}
		}
	}
}

type ack struct {
	path    string
	version int
	value   string
}

// TestCrashSafety kills a writing child process with SIGKILL at random
// moments while writes are in flight. After each kill the store must open
// cleanly, hold every write the child acknowledged, and its audit log must
// verify. The schedule comes from crashtest.Rand: its seed is logged.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Parallel()
	opts := initStore(t, audit.SyncFsync)
	ctx := context.Background()
	const rounds = 24
	var acked []ack
	rng := crashtest.Rand(t)
	for round := range rounds {
		child := crashtest.Start(t, "TestCrashChild", crashChildEnv+"="+opts.Dir)
		child.Await(t, "ready", 30*time.Second, func(line string) { t.Logf("round %d: child: %s", round, line) })
		// Kill only once a write went through, at a random moment of
		// the writing that follows, so every round tests acknowledged
		// writes rather than a start-up.
		roundAcks := 0
		take := func(line string) {
			a, err := parseAck(line)
			if err != nil {
				t.Fatalf("round %d: child said %q", round, line)
			}
			acked = append(acked, a)
			roundAcks++
		}
		take(child.Await(t, "", 30*time.Second, nil))
		deadline := time.After(time.Duration(rng.IntN(200)) * time.Millisecond)
		for killed := false; !killed; {
			select {
			case line, ok := <-child.Lines:
				if !ok {
					t.Fatalf("round %d: child exited before being killed", round)
				}
				take(line)
			case <-deadline:
				for _, line := range child.Kill(t) { // acks written before the kill landed
					if _, err := parseAck(line); err == nil {
						take(line)
					}
				}
				killed = true
			}
		}
		checkAfterCrash(t, ctx, opts, acked, round)
		t.Logf("round %d: %d writes acknowledged", round, roundAcks)
	}
	t.Logf("%d writes acknowledged in %d rounds", len(acked), rounds)
}

func parseAck(line string) (ack, error) {
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "ack" {
		return ack{}, fmt.Errorf("not an ack")
	}
	n, err := strconv.Atoi(f[2])
	return ack{f[1], n, f[3]}, err
}

func checkAfterCrash(t *testing.T, ctx context.Context, opts core.Options, acked []ack, round int) {
	t.Helper()
	l, err := core.Open(ctx, opts)
	if err != nil {
		t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
	}
	for _, a := range acked {
		v, err := l.Get(ctx, a.path, secret.Selector{Version: a.version})
		if err != nil {
			t.Fatalf("round %d: acknowledged write %s v%d lost: %v", round, a.path, a.version, err)
		}
		if string(v.Value.Reveal()) != a.value {
			t.Fatalf("round %d: %s v%d = %q, want %q", round, a.path, a.version, v.Value.Reveal(), a.value)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("round %d: close: %v", round, err)
	}
	rep, err := core.VerifyDir(ctx, opts.Dir)
	if err != nil || !rep.OK {
		t.Fatalf("round %d: audit verify after crash: %+v %v", round, rep, err)
	}
}
