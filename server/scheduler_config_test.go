package server_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/server/servertest"
)

func TestLoadFileScheduler(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	load := func(name, text string) (server.FileConfig, error) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return server.LoadFile(p)
	}
	fc, err := load("ok.yaml", "scheduler: {enabled: true, interval: 2m, jitter: 5s, node: pm-a, canary: 2, max_failures: 4, election_ttl: 6s}\n")
	if err != nil {
		t.Fatal(err)
	}
	c := fc.Scheduler.Config()
	if !c.Enabled || c.Interval != 2*time.Minute || c.Jitter != 5*time.Second || c.Node != "pm-a" || c.Due.Canary != 2 || c.Due.MaxFailures != 4 || c.ElectionTTL != 6*time.Second {
		t.Fatalf("scheduler config = %+v", c)
	}
	if fc, err := load("off.yaml", "listen: :8200\n"); err != nil || fc.Scheduler.Config().Enabled {
		t.Fatalf("no section: %+v, %v", fc.Scheduler, err)
	}
	for name, text := range map[string]string{
		"busy loop":        "scheduler: {enabled: true, interval: 10ms}\n",
		"negative jitter":  "scheduler: {jitter: -1s}\n",
		"negative canary":  "scheduler: {canary: -1}\n",
		"negative ttl":     "scheduler: {election_ttl: -2s}\n",
		"not a duration":   "scheduler: {interval: hourly}\n",
		"misspelt":         "scheduler: {enable: true}\n",
		"long node":        "scheduler: {node: " + strings.Repeat("n", 300) + "}\n",
		"enabled a string": "scheduler: {enabled: maybe}\n",
	} {
		if _, err := load(strings.ReplaceAll(name, " ", "-")+".yaml", text); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("%s: %v, want invalid argument", name, err)
		}
	}
}

// TestBackupRouteHostile: a malformed query is refused before any backup
// is taken, and a caller without a token gets no byte of one.
func TestBackupRouteHostile(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	hc := e.Server.Client()
	for _, c := range []struct {
		target, token string
		want          int
	}{
		{"/v1/store/backup?logical=yes", e.Tokens[servertest.Root], http.StatusBadRequest},
		{"/v1/store/backup?logical=" + strings.Repeat("t", 10000), e.Tokens[servertest.Root], http.StatusBadRequest},
		{"/v1/store/backup", "", http.StatusUnauthorized},
		{"/v1/store/backup", e.Tokens[servertest.Reader], http.StatusForbidden},
		{"/v1/scheduler", e.Tokens[servertest.Nobody], http.StatusForbidden},
	} {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, e.URL+c.target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want || resp.Header.Get("Content-Type") == "application/octet-stream" {
			t.Errorf("%s: %d %s, want %d and no backup", c.target[:min(len(c.target), 40)], resp.StatusCode, resp.Header.Get("Content-Type"), c.want)
		}
	}
}
