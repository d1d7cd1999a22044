package action

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBinaryJS runs the action's JavaScript entry points with node: the
// release pinned in action/release.json (passman, passman-full and
// passman-regal) is
// downloaded (through a redirect, as GitHub's release downloads are),
// verified, cached side by side and run with the step's arguments and
// exit code; a download of either whose SHA-256 does not match its pin is
// refused, with no fallback, and neither is cached; the post step never
// fails the job.
func TestBinaryJS(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("SKIPPED: node is not installed")
	}
	if runtime.GOOS == "windows" {
		t.Skip("the fake binary is a shell script")
	}
	fake := []byte("#!/bin/sh\necho \"fake passman $*\"\n\"$(dirname \"$0\")/passman-regal\"\n\"$(dirname \"$0\")/passman-full\"\nexit 3\n")
	fakeRegal := []byte("#!/bin/sh\necho \"fake passman-regal beside passman\"\n")
	fakeFull := []byte("#!/bin/sh\necho \"fake passman-full beside passman\"\n")
	pin := func(b []byte) string { sum := sha256.Sum256(b); return hex.EncodeToString(sum[:]) }
	goarch := map[string]string{"amd64": "amd64", "arm64": "arm64"}[runtime.GOARCH]
	plat := runtime.GOOS + "_" + goarch
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/download/v9.9.9/passman_" + plat:
			http.Redirect(w, r, "/objects/passman", http.StatusFound)
		case "/objects/passman":
			_, _ = w.Write(fake)
		case "/download/v9.9.9/passman-regal_" + plat:
			_, _ = w.Write(fakeRegal)
		case "/download/v9.9.9/passman-full_" + plat:
			_, _ = w.Write(fakeFull)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	setup := func(pins map[string]string) (root, cache string) {
		root, cache = t.TempDir(), t.TempDir()
		for _, f := range []string{"action/js/main.js", "action/js/post.js", "action/js/binary.js"} {
			b, err := os.ReadFile(filepath.Join("..", f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		rel, _ := json.Marshal(map[string]any{"version": "v9.9.9", "url": srv.URL + "/download", "sha256": pins})
		if err := os.WriteFile(filepath.Join(root, "action", "release.json"), rel, 0o644); err != nil {
			t.Fatal(err)
		}
		return root, cache
	}
	run := func(root, cache, script string) (string, int) {
		cmd := exec.Command(node, filepath.Join(root, "action", "js", script))
		cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+caFile, "RUNNER_TOOL_CACHE="+cache, "INPUT_BINARY=")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}

	pinsOf := func() map[string]string {
		return map[string]string{"passman_" + plat: pin(fake), "passman-regal_" + plat: pin(fakeRegal), "passman-full_" + plat: pin(fakeFull)}
	}
	good := pinsOf()
	root, cache := setup(good)
	out, code := run(root, cache, "main.js")
	if code != 3 || !strings.Contains(out, "fake passman action run") || !strings.Contains(out, "fake passman-regal beside passman") || !strings.Contains(out, "fake passman-full beside passman") {
		t.Fatalf("main.js: exit %d:\n%s", code, out)
	}
	for _, prog := range []string{"passman", "passman-full", "passman-regal"} {
		cached := filepath.Join(cache, "passman", "v9.9.9", plat, prog)
		if fi, err := os.Stat(cached); err != nil || fi.Mode().Perm()&0o100 == 0 {
			t.Fatalf("cached %s: %v %v", prog, fi, err)
		}
	}
	if out, code := run(root, cache, "post.js"); code != 0 || !strings.Contains(out, "fake passman action post") {
		t.Fatalf("post.js: exit %d:\n%s", code, out)
	}

	// A tampered download of either program: refused, never run, and
	// neither program cached.
	for _, prog := range []string{"passman", "passman-full", "passman-regal"} {
		pins := pinsOf()
		pins[prog+"_"+plat] = strings.Repeat("0", 64)
		root, cache = setup(pins)
		out, code = run(root, cache, "main.js")
		if code != 2 || !strings.Contains(out, prog+"_"+plat+" has SHA-256") || strings.Contains(out, "fake passman") {
			t.Fatalf("tampered %s: exit %d:\n%s", prog, code, out)
		}
		for _, p := range []string{"passman", "passman-full", "passman-regal"} {
			if _, err := os.Stat(filepath.Join(cache, "passman", "v9.9.9", plat, p)); !os.IsNotExist(err) {
				t.Fatalf("tampered %s: %s was cached: %v", prog, p, err)
			}
		}
	}
}
