package managed_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/passman-dev/passman/scanner/managed"
)

// benchLengths are the distinct value lengths of the benchmark index: the
// generator's usual sizes.
var benchLengths = []int{16, 20, 24, 32, 40}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randString(rng *rand.Rand, n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

// goLikeSource returns about size bytes of Go-like code, with hex digests,
// UUIDs and base64-ish strings of the indexed lengths sprinkled in, so the
// matcher really hashes candidates.
func goLikeSource(rng *rand.Rand, size int) []byte {
	var sb strings.Builder
	for i := 0; sb.Len() < size; i++ {
		fmt.Fprintf(&sb, "// handler%d serves %s requests; see https://example.com/docs?id=%d&v=2.\n", i, randString(rng, 6, alnum), i)
		fmt.Fprintf(&sb, "func (s *Server) handler%d(w http.ResponseWriter, r *http.Request) error {\n", i)
		fmt.Fprintf(&sb, "\tctx, cancel := context.WithTimeout(r.Context(), %d*time.Second)\n\tdefer cancel()\n", i%30+1)
		fmt.Fprintf(&sb, "\tkey := %q\n", randString(rng, benchLengths[i%len(benchLengths)], alnum))
		fmt.Fprintf(&sb, "\tif err := s.store.Put(ctx, \"svc/%s/token\", []byte(key)); err != nil {\n", randString(rng, 8, alnum))
		fmt.Fprintf(&sb, "\t\treturn fmt.Errorf(\"put %%s: %%w\", %q, err)\n\t}\n", randString(rng, 12, alnum))
		fmt.Fprintf(&sb, "\tm := map[string]int{\"alpha\": %d, \"beta\": %d, \"gamma\": %d}\n", i, i*2, i*3)
		fmt.Fprintf(&sb, "\ts.log.Info(\"served\", \"n\", len(m), \"digest\", %q)\n", randString(rng, 40, "0123456789abcdef"))
		sb.WriteString("\treturn json.NewEncoder(w).Encode(m)\n}\n\n")
	}
	return []byte(sb.String())
}

func BenchmarkFind(b *testing.B) {
	rng := rand.New(rand.NewChaCha8([32]byte{2}))
	text := goLikeSource(rng, 4<<20)
	versions := make([]planted, 100_000)
	for i := range versions {
		versions[i] = planted{
			value:   randString(rng, benchLengths[i%len(benchLengths)], alnum),
			path:    fmt.Sprintf("bench/secret%06d", i),
			version: 1,
		}
	}
	for _, bc := range []struct {
		name string
		ix   managed.Index
	}{
		{"index=100k", buildIndex(b, versions)},
		{"index=100k/shareable", buildShareable(b, versions)},
		{"index=empty", buildIndex(b, nil)}, // baseline: the walk alone, no candidate hashed
	} {
		m := managed.New(bc.ix)
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				m.Find(text)
			}
		})
	}
}
