package core_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/crashtest"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
)

const (
	// keysCrashEnv carries "DIR OP STOP" to the child: the store, "rotate"
	// or "rewrap", and after how many re-wrapped values to stop.
	keysCrashEnv = "PASSMAN_KEYS_CRASH_CHILD"
	// keysCrashKeyring is the keyring ("new,old") the rewrap child opens
	// the store with.
	keysCrashKeyring = "PASSMAN_KEYS_CRASH_KEYRING"
	// A re-wrap commits 1000 values per transaction: 2500 versions and the
	// detection seed make four transactions, so a stop after at most
	// crashKeyValues+1-1000 re-wrapped values always lands before the last.
	crashKeyPaths, crashKeyVersions = 250, 10
	crashKeyValues                  = crashKeyPaths * crashKeyVersions
)

// TestKeysCrashChild is the child half of TestKeysRotateKilled and
// TestKeysRewrapKilled: it runs keys rotate or rewrap on the store while
// watching the database; once STOP values are re-wrapped under a key they
// were not under when it started, it prints "stopped" and stops itself
// (SIGSTOP) mid-run, for the parent's SIGKILL. It does nothing in a normal
// test run.
func TestKeysCrashChild(t *testing.T) {
	env := os.Getenv(keysCrashEnv)
	if env == "" {
		t.Skip("child process of TestKeysRotateKilled")
	}
	f := strings.Fields(env)
	stop, err := strconv.Atoi(f[2])
	if len(f) != 3 || err != nil {
		fmt.Printf("bad %s=%q\n", keysCrashEnv, env)
		os.Exit(1)
	}
	ctx := context.Background()
	opts := core.Options{Dir: f[0], Actor: "alice", AuditSync: audit.SyncFsync}
	if s := os.Getenv(keysCrashKeyring); s != "" {
		if opts.Keyring, err = keyring.FromEnv(s); err != nil {
			fmt.Printf("keyring: %v\n", err)
			os.Exit(1)
		}
	}
	l, err := core.Open(ctx, opts)
	if err != nil {
		fmt.Printf("open failed: %v\n", err)
		os.Exit(1)
	}
	before, err := core.SealedByKey(ctx, l)
	if err != nil {
		fmt.Printf("count: %v\n", err)
		os.Exit(1)
	}
	go func() {
		for {
			now, err := core.SealedByKey(ctx, l)
			if err != nil {
				fmt.Printf("count: %v\n", err)
				os.Exit(1)
			}
			moved := 0
			for id, n := range now {
				moved += max(0, n-before[id])
			}
			if moved >= stop {
				fmt.Printf("stopped after %d\n", moved)
				_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	switch f[1] {
	case "rotate":
		_, err = l.RotateKeys(ctx)
	case "rewrap":
		_, err = l.Rewrap(ctx)
	}
	fmt.Printf("%s ran to the end: %v\n", f[1], err)
	os.Exit(1)
}

// keysCrashStore makes a store with crashKeyValues versions.
func keysCrashStore(t *testing.T) core.Options {
	t.Helper()
	opts := initStore(t, audit.SyncWrite)
	fast := opts
	fast.NoSync = true
	l := open(t, fast)
	ctx := context.Background()
	keep := secret.MaxVersionsLimit
	for p := range crashKeyPaths {
		for v := range crashKeyVersions {
			if _, err := l.Put(ctx, fmt.Sprintf("k/%03d", p), secret.NewValue(fmt.Appendf(nil, "value-%d-%d", p, v)), secret.PutOptions{Metadata: &secret.MetadataUpdate{MaxVersions: &keep}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return opts
}

// checkKeysCrash opens the store as opts says and checks that every version
// decrypts to its value; it returns the sealed values by master key.
func checkKeysCrash(t *testing.T, opts core.Options, when string) map[string]int {
	t.Helper()
	ctx := context.Background()
	l, err := core.Open(ctx, opts)
	if err != nil {
		t.Fatalf("%s: open: %v", when, err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Fatalf("%s: close: %v", when, err)
		}
	}()
	byKey, err := core.SealedByKey(ctx, l)
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	for p := range crashKeyPaths {
		for v := range crashKeyVersions {
			got, err := l.Get(ctx, fmt.Sprintf("k/%03d", p), secret.Selector{Version: v + 1})
			if err != nil {
				t.Fatalf("%s: k/%03d v%d: %v", when, p, v+1, err)
			}
			if want := fmt.Sprintf("value-%d-%d", p, v); string(got.Value.Reveal()) != want {
				t.Fatalf("%s: k/%03d v%d decrypts to another value", when, p, v+1)
			}
		}
	}
	return byKey
}

// killKeys runs op in a child that stops after a random number of
// re-wrapped values, short of the last batch, and kills it there.
func killKeys(t *testing.T, opts core.Options, op string, stop int, env ...string) {
	t.Helper()
	child := crashtest.Start(t, "TestKeysCrashChild", append(env, keysCrashEnv+"="+opts.Dir+" "+op+" "+strconv.Itoa(stop))...)
	child.Await(t, "stopped", 60*time.Second, func(line string) { t.Fatalf("child: %s", line) })
	child.Kill(t)
}

// interrupted fails unless the values are under more than one key with
// some already under active: a kill in the middle of a re-wrap.
func interrupted(t *testing.T, byKey map[string]int, active, when string) {
	t.Helper()
	if n := byKey[active]; len(byKey) < 2 || n == 0 || n == crashKeyValues+1 {
		t.Fatalf("%s: sealed values by key %v (active %s): the kill did not land mid-re-wrap", when, byKey, active)
	}
	t.Logf("%s: sealed values by key %v", when, byKey)
}

// TestKeysRotateKilled kills keys rotate mid-re-wrap, several times over
// on the same store, then lets it finish: after each kill every value
// decrypts with the key file as it was left, and after the re-run the
// active key alone opens every value.
func TestKeysRotateKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Parallel()
	opts := keysCrashStore(t)
	rng := crashtest.Rand(t)
	keyFile := filepath.Join(opts.Dir, core.KeyFile)
	for round := range 3 {
		killKeys(t, opts, "rotate", 1+rng.IntN(crashKeyValues+1-1000))
		when := fmt.Sprintf("round %d after SIGKILL", round)
		kr, err := keyring.LoadFile(keyFile)
		if err != nil {
			t.Fatalf("%s: key file: %v", when, err)
		}
		if len(kr.Keys()) != round+2 {
			t.Fatalf("%s: key file holds %d keys, want %d", when, len(kr.Keys()), round+2)
		}
		interrupted(t, checkKeysCrash(t, opts, when), kr.Active(), when)
	}
	l := open(t, opts)
	rep, err := l.RotateKeys(context.Background())
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	onlyActive(t, opts, rep.Active, nil)
}

// onlyActive checks that every value is under active, and that the store
// opens and decrypts everything with active alone (kr, or the key file).
func onlyActive(t *testing.T, opts core.Options, active string, kr *keyring.Keyring) {
	t.Helper()
	if kr == nil {
		var err error
		if kr, err = keyring.LoadFile(filepath.Join(opts.Dir, core.KeyFile)); err != nil {
			t.Fatal(err)
		}
	}
	var retired []string
	for _, k := range kr.Keys() {
		if k.ID != active {
			retired = append(retired, k.ID)
		}
	}
	if err := kr.Remove(retired...); err != nil {
		t.Fatal(err)
	}
	opts.Keyring = kr
	byKey := checkKeysCrash(t, opts, "after the re-run, with the active key alone")
	if len(byKey) != 1 || byKey[active] != crashKeyValues+1 {
		t.Fatalf("after the re-run: sealed values by key %v, want all under %s", byKey, active)
	}
}

// TestKeysRewrapKilled kills keys rewrap (a rotation done outside passman:
// PASSMAN_MASTER_KEY="new,old") mid-re-wrap, checks every value still
// decrypts, re-runs it, and checks "new" alone opens every value.
func TestKeysRewrapKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Parallel()
	opts := keysCrashStore(t)
	rng := crashtest.Rand(t)
	kr, err := keyring.LoadFile(filepath.Join(opts.Dir, core.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	active, err := kr.Rotate(time.Now(), func(*keyring.Keyring) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	env := kr.EncodeEnv()
	withEnv := func() core.Options {
		o := opts
		if o.Keyring, err = keyring.FromEnv(env); err != nil {
			t.Fatal(err)
		}
		return o
	}
	killKeys(t, opts, "rewrap", 1+rng.IntN(crashKeyValues+1-1000), keysCrashKeyring+"="+env)
	interrupted(t, checkKeysCrash(t, withEnv(), "after SIGKILL"), active, "after SIGKILL")

	l := open(t, withEnv())
	if _, err := l.Rewrap(context.Background()); err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	onlyActive(t, opts, active, withEnv().Keyring)
}
