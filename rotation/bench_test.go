package rotation_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/pgtest"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
)

// openSyncedStore opens a store with fsync on, as in production.
func openSyncedStore(b *testing.B) *core.Local {
	b.Helper()
	opts := core.Options{Dir: filepath.Join(b.TempDir(), "store"), Actor: "bench"}
	if _, err := core.Init(context.Background(), opts); err != nil {
		b.Fatal(err)
	}
	l, err := core.Open(context.Background(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// BenchmarkRotateDue rotates 1,000 due secrets with the generated
// connector through the audited store (fsync on); it reports rotations
// per second.
func BenchmarkRotateDue(b *testing.B) {
	const n = 1000
	for b.Loop() {
		b.StopTimer()
		now := time.Now()
		clock := func() time.Time { return now }
		l := openSyncedStore(b)
		period := secret.Duration(time.Hour)
		for i := range n {
			md := &secret.MetadataUpdate{RotationPeriod: &period, Rotation: &secret.Rotation{Connection: secret.GeneratedConnection}}
			if _, err := l.Put(context.Background(), fmt.Sprintf("svc/s%04d", i), secret.NewValue([]byte("first")), secret.PutOptions{Metadata: md}); err != nil {
				b.Fatal(err)
			}
		}
		e := &rotation.Runner{Store: l, Connectors: l, Now: clock}
		now = now.Add(2 * time.Hour)
		b.StartTimer()
		start := time.Now()
		rep, err := e.RotateDue(context.Background(), rotation.DueOptions{})
		if err != nil || len(rep.Rotated) != n {
			b.Fatalf("rotated %d of %d: %v", len(rep.Rotated), n, err)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "rotations/s")
	}
}

// BenchmarkRotateOne is one rotation end to end (create to finish) with
// the generated connector: the engine's own cost, audit fsyncs included.
func BenchmarkRotateOne(b *testing.B) {
	l := openSyncedStore(b)
	md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: secret.GeneratedConnection}}
	if _, err := l.Put(context.Background(), "app/key", secret.NewValue([]byte("first")), secret.PutOptions{Metadata: md}); err != nil {
		b.Fatal(err)
	}
	e := &rotation.Runner{Store: l, Connectors: l}
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := e.Rotate(context.Background(), "app/key", "bench"); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkLeakToRotated measures a leak's whole path: export the
// fingerprint index, scan a small repository's history in which a managed
// secret was committed, ask the respond policy, rotate the secret.
func BenchmarkLeakToRotated(b *testing.B) {
	pe, err := policy.New(context.Background(), policy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		l := openSyncedStore(b)
		md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: secret.GeneratedConnection}}
		leaked := "Lk9vQ2xW7pZ4rT6m"
		if _, err := l.Put(context.Background(), "prod/db/password", secret.NewValue([]byte(leaked)), secret.PutOptions{Metadata: md}); err != nil {
			b.Fatal(err)
		}
		repo, git := newRepo(b)
		for i := range 20 {
			if err := os.WriteFile(filepath.Join(repo, fmt.Sprintf("f%d.go", i)), []byte(fmt.Sprintf("package p\n\nconst n%d = %d\n", i, i)), 0o644); err != nil {
				b.Fatal(err)
			}
			git("add", ".")
			git("commit", "-q", "-m", fmt.Sprint(i))
		}
		if err := os.WriteFile(filepath.Join(repo, "app.env"), []byte("DB_PASSWORD="+leaked+"\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		git("add", ".")
		git("commit", "-q", "-m", "leak")
		b.StartTimer()

		findings := scanManaged(b, l, repo)
		if len(findings) != 1 || findings[0].Managed == nil {
			b.Fatalf("findings %d", len(findings))
		}
		f := findings[0]
		e := &rotation.Runner{Store: l, Connectors: l}
		res, err := e.Respond(context.Background(), rotation.Leak{Path: f.Managed.Path, Version: f.Managed.Version, Where: f.File}, pe.Respond)
		if err != nil || res.Rotation == nil || res.Rotation.To != 2 {
			b.Fatalf("response %+v: %v", res, err)
		}
	}
}

// BenchmarkPostgresRotation is one single-user PostgreSQL rotation end to
// end (create, ALTER ROLE, log in with the new password, promote) against
// a real server on loopback, with the audited store's fsyncs. durable runs
// the server with PostgreSQL's defaults, every commit fsync'd, as in
// production; nosync with the tests' server, which syncs nothing, so the
// difference is what the server's durability costs.
func BenchmarkPostgresRotation(b *testing.B) {
	b.Run("durable", func(b *testing.B) { benchPostgresRotation(b, pgtest.NewDurable(b)) })
	b.Run("nosync", func(b *testing.B) { benchPostgresRotation(b, pgtest.Start(b)) })
}

func benchPostgresRotation(b *testing.B, srv *pgtest.Server) {
	role := pgtest.Name("bench")
	srv.Exec(b, "CREATE ROLE "+role+" LOGIN PASSWORD 'initial-password-1'")
	l := openSyncedStore(b)
	pgConnection(b, l, srv, "prod/db/password", role, nil)
	md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: "pg", Params: map[string]string{"role": role}}}
	if _, err := l.Put(context.Background(), "prod/db/password", secret.NewValue([]byte("initial-password-1")), secret.PutOptions{Metadata: md}); err != nil {
		b.Fatal(err)
	}
	e := &rotation.Runner{Store: l, Connectors: l}
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := e.Rotate(context.Background(), "prod/db/password", "bench"); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportPercentiles(b, lat)
}
