package manifest_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/manifest"
	"github.com/passman-dev/passman/secret"
)

// genManifest writes a manifest of n secrets with every field set, about
// 220 bytes each.
func genManifest(n int) []byte {
	var b strings.Builder
	b.WriteString("secrets:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - path: team%d/svc%d/token%d\n    owner: team-%d\n    description: token %d of service %d\n    tags: {env: prod, tier: \"%d\"}\n    generate: {length: 32, classes: [upper, lower, digits]}\n    rotation: {period: 720h}\n",
			i%50, i%7, i, i%50, i, i%7, i%3)
	}
	return []byte(b.String())
}

// seedStore puts the n secrets of genManifest(n) into svc, every tenth
// with a different owner (so the plan has updates to compute), with
// concurrent writers sharing the backend's group commits.
func seedStore(t testing.TB, svc passman.Service, n int) {
	t.Helper()
	period := secret.Duration(720 * time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				owner := fmt.Sprintf("team-%d", i%50)
				if i%10 == 0 {
					owner = "someone-else"
				}
				desc := fmt.Sprintf("token %d of service %d", i, i%7)
				md := &secret.MetadataUpdate{Owner: &owner, Description: &desc, Tags: map[string]string{"env": "prod", "tier": fmt.Sprint(i % 3)}, RotationPeriod: &period}
				path := fmt.Sprintf("team%d/svc%d/token%d", i%50, i%7, i)
				if _, err := svc.Put(t.Context(), path, secret.NewValue([]byte("v")), secret.PutOptions{Metadata: md}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// BenchmarkPlan10k plans a 10,000-secret manifest against a 10,000-secret
// store (1,000 of them with a different owner). Budget: 2 s per plan.
func BenchmarkPlan10k(b *testing.B) {
	const n = 10000
	svc := newStore(b)
	seedStore(b, svc, n)
	m, err := manifest.Parse("passman.yaml", genManifest(n))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	ops := 0
	for b.Loop() {
		p, err := manifest.MakePlan(b.Context(), svc, m)
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Changes) != n/10 {
			b.Fatalf("%d changes, want %d", len(p.Changes), n/10)
		}
		ops++
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(ops), "ms/op")
}

// BenchmarkParse10k parses a 10,000-secret manifest (2.2 MB).
func BenchmarkParse10k(b *testing.B) {
	data := genManifest(10000)
	b.SetBytes(int64(len(data)))
	start := time.Now()
	ops := 0
	for b.Loop() {
		if _, err := manifest.Parse("passman.yaml", data); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(ops), "ms/op")
}
