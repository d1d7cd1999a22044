package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/server/servertest"
)

// hostileCanary is the value of app/x in the hostile tests: no response
// to a hostile request and no log line may hold it.
const hostileCanary = "hostile-canary-5b7e0c1d9a8f2e3b"

// hostileTarget is a server under attack: its URL, an HTTP client that
// trusts it, its root token and its log.
type hostileTarget struct {
	url   string
	hc    *http.Client
	token string
	log   func() []byte
	tls   *tls.Config
}

func (h hostileTarget) do(t *testing.T, method, target string, hdr http.Header, body io.Reader) result {
	t.Helper()
	req, err := http.NewRequest(method, h.url+target, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if h.token != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %.100s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{status: resp.StatusCode, body: b, header: resp.Header}
}

// noCanary fails if any of the responses or the log holds the canary.
func (h hostileTarget) noCanary(t *testing.T, res []result) {
	t.Helper()
	planted := [][]byte{[]byte(hostileCanary), []byte(base64.StdEncoding.EncodeToString([]byte(hostileCanary)))}
	for _, p := range planted {
		for i, r := range res {
			if bytes.Contains(r.body, p) {
				t.Errorf("response %d (%d) holds the canary %q: %.300s", i, r.status, p, r.body)
			}
		}
		if bytes.Contains(h.log(), p) {
			t.Errorf("the server log holds the canary %q", p)
		}
	}
}

// envTarget is a servertest server (httptest, no timeouts) with app/x
// holding the canary.
func envTarget(t *testing.T) (hostileTarget, *servertest.Env) {
	t.Helper()
	e := servertest.New(t, servertest.Options{})
	if _, err := e.Local.Put(context.Background(), "app/x", secret.NewValue([]byte(hostileCanary)), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	seed(t, e, "x", 1)
	seed(t, e, "locked/x", 1)
	tr := e.Server.Client().Transport.(*http.Transport)
	return hostileTarget{url: e.URL, hc: e.Server.Client(), token: e.Tokens[servertest.Root], log: e.Log.Bytes, tls: tr.TLSClientConfig}, e
}

// runTarget is a server started by server.Run (dev mode), so it has the
// timeouts, header limit and mux that Run configures, with app/x holding
// the canary.
func runTarget(t *testing.T, cfg server.Config) hostileTarget {
	t.Helper()
	buf := &servertest.Buffer{}
	cfg.Dev, cfg.DevDir, cfg.Out = true, t.TempDir(), io.Discard
	cfg.Store = core.Options{Actor: "tester", AuditSync: audit.SyncWrite}
	cfg.Logger = slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, _ := runServer(t, cfg)
	pem, err := os.ReadFile(s.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	hc := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: tlsCfg},
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	h := hostileTarget{url: s.URL, hc: hc, token: s.RootToken, log: buf.Bytes, tls: tlsCfg}
	b64 := base64.StdEncoding.EncodeToString([]byte(hostileCanary))
	for _, p := range []string{"app/x", "x", "locked/x"} {
		v := b64
		if p != "app/x" {
			v = base64.StdEncoding.EncodeToString([]byte("other-" + p))
		}
		if r := h.do(t, "PUT", "/v1/secrets/"+p, nil, strings.NewReader(`{"value":"`+v+`"}`)); r.status != 200 {
			t.Fatalf("seed %s: %d %s", p, r.status, r.body)
		}
	}
	return h
}

// TestHostileNestedJSON: deeply nested bodies are refused with 400, fast,
// and the server keeps serving.
func TestHostileNestedJSON(t *testing.T) {
	t.Parallel()
	h, _ := envTarget(t)
	const depth = 100_000
	bodies := map[string]string{
		"arrays":        strings.Repeat("[", depth),
		"closed arrays": strings.Repeat("[", depth) + strings.Repeat("]", depth),
		"objects":       strings.Repeat(`{"a":`, depth),
		"in value":      `{"value":` + strings.Repeat("[", depth),
		"in metadata":   `{"value":"","metadata":` + strings.Repeat(`{"a":`, depth),
		"canary":        `{"value":"` + hostileCanary + `","metadata":` + strings.Repeat("[", depth),
	}
	targets := []struct{ method, target string }{
		{"PUT", "/v1/secrets/app/nested"},
		{"PATCH", "/v1/metadata/app/x"},
		{"POST", "/v1/auth/token/create"},
		{"POST", "/v1/rollback/app/x"},
		{"PUT", "/v1/stage/app/x"},
	}
	var res []result
	for name, body := range bodies {
		for _, tg := range targets {
			r := h.do(t, tg.method, tg.target, nil, strings.NewReader(body))
			res = append(res, r)
			if r.status != 400 || r.class() != "invalid_argument" {
				t.Errorf("%s %s, %s: %d %.200s, want 400 invalid_argument", tg.method, tg.target, name, r.status, r.body)
			}
		}
	}
	if r := h.do(t, "GET", "/v1/secrets/app/x", nil, nil); r.status != 200 {
		t.Fatalf("after nested bodies: %d %s", r.status, r.body)
	}
	if r := h.do(t, "GET", "/v1/describe/app/nested", nil, nil); r.status != 404 {
		t.Errorf("a nested body was stored: %d %s", r.status, r.body)
	}
	h.noCanary(t, res)
}

// hostilePaths are spellings that must never reach a secret: traversal,
// encoded separators, backslashes, invalid UTF-8.
var hostilePaths = []string{
	// traversal
	"/v1/secrets/app/../app/x",
	"/v1/secrets/app/%2e%2e/app/x",
	"/v1/secrets/app/%2E%2E/app/x",
	"/v1/secrets/app/.%2e/app/x",
	"/v1/secrets/locked/%2e%2e/app/x",
	"/v1/secrets/app/./x",
	"/v1/secrets/app/%2e/x",
	"/v1/secrets/app/x/..",
	"/v1/secrets/..",
	"/v1/secrets/%2e%2e/secrets/app/x",
	"/v1/describe/../secrets/app/x",
	"/v1/describe/%2e%2e/secrets/app/x",
	// encoded separators (%2F is '/' once decoded, so only spellings that
	// are invalid as decoded paths belong here; see TestEncodedSlash)
	"/v1/secrets/app/x%2F..%2F..%2Fx",
	"/v1/secrets/app%2F%2Fx",
	"/v1/secrets/app%2F.%2Fx",
	"/v1/secrets/%2Fapp/x",
	"/v1/secrets/app%252Fx",
	"/v1/secrets/app%252e%252e",
	// empty segments
	"/v1/secrets//app/x",
	"/v1/secrets/app//x",
	"/v1/secrets///x",
	"/v1/secrets/app/x//",
	// backslashes
	"/v1/secrets/app\\x",
	"/v1/secrets/app%5Cx",
	"/v1/secrets/app%5c..%5cx",
	"/v1/secrets/..\\app\\x",
	"/v1/secrets/app/..%5C..%5Cx",
	// invalid UTF-8 and its cousins
	"/v1/secrets/app/%ff",
	"/v1/secrets/app/x%ff",
	"/v1/secrets/app/%c3%28",
	"/v1/secrets/app/%c0%af",       // overlong '/'
	"/v1/secrets/app/%c0%ae%c0%ae", // overlong ".."
	"/v1/secrets/app/%e0%80%af",
	"/v1/secrets/app/%ed%a0%80",    // surrogate
	"/v1/secrets/app/%ef%bc%8f",    // fullwidth solidus
	"/v1/secrets/app/%e2%80%ae%78", // right-to-left override
	"/v1/secrets/app/x%00",
	"/v1/secrets/app/x%0d%0aX-Injected:%201",
	"/v1/secrets/%20app/x",
}

func checkHostilePaths(t *testing.T, h hostileTarget) {
	t.Helper()
	var res []result
	for _, target := range hostilePaths {
		for _, method := range []string{"GET", "PUT", "DELETE"} {
			var body io.Reader
			if method == "PUT" {
				body = strings.NewReader(`{"value":"` + base64.StdEncoding.EncodeToString([]byte("overwritten")) + `"}`)
			}
			r := h.do(t, method, target, nil, body)
			res = append(res, r)
			if r.status != 400 && (r.status != 405 || !strings.HasPrefix(target, "/v1/describe/")) {
				t.Errorf("%s %s: %d %.200s (Location %q), want 400", method, target, r.status, r.body, r.header.Get("Location"))
			}
			if r.header.Get("X-Injected") != "" {
				t.Errorf("%s %s: a header was injected", method, target)
			}
		}
	}
	// Nothing was overwritten or deleted.
	r := h.do(t, "GET", "/v1/secrets/app/x", nil, nil)
	if r.status != 200 || !bytes.Contains(r.body, []byte(base64.StdEncoding.EncodeToString([]byte(hostileCanary)))) {
		t.Fatalf("app/x after hostile paths: %d %s", r.status, r.body)
	}
	for _, p := range []string{"x"} {
		if r := h.do(t, "GET", "/v1/describe/"+p, nil, nil); r.status != 200 || !bytes.Contains(r.body, []byte(`"current_version":1`)) {
			t.Errorf("%s after hostile paths: %d %s", p, r.status, r.body)
		}
	}
	h.noCanary(t, res)
}

// TestHostilePaths sends traversal and encoding tricks to the handler and
// to a server set up by Run (which puts a mux in front of it).
func TestHostilePaths(t *testing.T) {
	t.Parallel()
	t.Run("handler", func(t *testing.T) {
		t.Parallel()
		h, _ := envTarget(t)
		checkHostilePaths(t, h)
	})
	t.Run("run", func(t *testing.T) {
		t.Parallel()
		checkHostilePaths(t, runTarget(t, server.Config{}))
	})
}

// TestEncodedSlash: the server reads the decoded URL path, so "%2F" is a
// separator, "app%2Fx" names app/x and nothing else, and the decoded path
// is validated like any other.
func TestEncodedSlash(t *testing.T) {
	t.Parallel()
	h := runTarget(t, server.Config{})
	want := base64.StdEncoding.EncodeToString([]byte(hostileCanary))
	for _, target := range []string{"/v1/secrets/app%2Fx", "/v1/secrets/app%2fx"} {
		if r := h.do(t, "GET", target, nil, nil); r.status != 200 || !bytes.Contains(r.body, []byte(`"path":"app/x"`)) || !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("GET %s: %d %.200s, want app/x", target, r.status, r.body)
		}
	}
	if r := h.do(t, "GET", "/v1/secrets/locked%2F..%2Fapp%2Fx", nil, nil); r.status != 400 {
		t.Errorf("encoded traversal: %d %s", r.status, r.body)
	}
}

// rawRequest writes a raw request on a new TLS connection and returns
// the status line of the answer ("" if the connection closed first).
func rawRequest(t *testing.T, h hostileTarget, req string) string {
	t.Helper()
	u, _ := url.Parse(h.url)
	conn, err := tls.Dial("tcp", u.Host, h.tls)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		return ""
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestHostileRawPaths sends bytes a client library would escape.
func TestHostileRawPaths(t *testing.T) {
	t.Parallel()
	for name, h := range map[string]hostileTarget{"handler": func() hostileTarget { h, _ := envTarget(t); return h }(), "run": runTarget(t, server.Config{})} {
		for _, p := range []string{"/v1/secrets/app/\xff", "/v1/secrets/app/\xc0\xae\xc0\xae/x", "/v1/secrets/app\\..\\x", "/v1/secrets/app/x\x00", "/v1/secrets/app/x y"} {
			line := rawRequest(t, h, "GET "+p+" HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "+h.token+"\r\nConnection: close\r\n\r\n")
			if !strings.HasPrefix(line, "HTTP/1.1 400") {
				t.Errorf("%s: GET %q: %q, want 400", name, p, line)
			}
		}
	}
}

// TestHostileHeaders: oversized headers are refused before the handler,
// and a canary in a header is never logged.
func TestHostileHeaders(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, h hostileTarget, size int) {
		var res []result
		for name, hdr := range map[string]http.Header{
			"one big": {"X-Big": {strings.Repeat("a", size) + hostileCanary}},
			"many": func() http.Header {
				m := http.Header{}
				for i := range size / 100 {
					m.Set("X-H"+strconv.Itoa(i), strings.Repeat("d", 90))
				}
				m.Set("X-Canary", hostileCanary)
				return m
			}(),
			"big auth":       {"Authorization": {"Bearer " + strings.Repeat("A", size) + hostileCanary}},
			"big cookie":     {"Cookie": {"c=" + strings.Repeat("A", size) + hostileCanary}},
			"big user agent": {"User-Agent": {strings.Repeat("u", size) + hostileCanary}},
		} {
			r := h.do(t, "GET", "/v1/secrets/app/x", hdr, nil)
			res = append(res, r)
			if r.status != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("%s: %d %.200s, want 431", name, r.status, r.body)
			}
		}
		// A canary in ordinary headers of a valid request is not logged.
		r := h.do(t, "GET", "/v1/describe/app/x", http.Header{"X-Canary": {hostileCanary}, "User-Agent": {hostileCanary}, "Referer": {"https://" + hostileCanary}}, nil)
		if r.status != 200 {
			t.Errorf("describe with canary headers: %d %s", r.status, r.body)
		}
		res = append(res, r)
		if r := h.do(t, "GET", "/v1/describe/app/x", http.Header{"Authorization": {"Bearer " + hostileCanary}}, nil); r.status != 401 {
			t.Errorf("canary as token: %d %s", r.status, r.body)
		} else {
			res = append(res, r)
		}
		h.noCanary(t, res)
		if r := h.do(t, "GET", "/v1/secrets/app/x", nil, nil); r.status != 200 {
			t.Errorf("after big headers: %d %s", r.status, r.body)
		}
	}
	t.Run("handler", func(t *testing.T) {
		t.Parallel()
		h, _ := envTarget(t)
		check(t, h, 2<<20) // httptest keeps net/http's 1 MiB default
	})
	t.Run("run", func(t *testing.T) {
		t.Parallel()
		check(t, runTarget(t, server.Config{}), 128<<10) // Run sets 64 KiB
	})
}

// TestSlowloris: with the timeouts Run configures, a client that sends
// its headers a byte at a time is cut off after ReadHeaderTimeout, one that
// trickles its body after ReadTimeout, and others are served meanwhile.
func TestSlowloris(t *testing.T) {
	t.Parallel()
	const headerTimeout, readTimeout = time.Second, 2 * time.Second
	h := runTarget(t, server.Config{ReadHeaderTimeout: headerTimeout, ReadTimeout: readTimeout})
	u, _ := url.Parse(h.url)

	// trickle sends msg a byte per interval and reports how long the
	// server let it go on.
	trickle := func(msg string, interval time.Duration) (time.Duration, error) {
		return trickleAfter(u.Host, h.tls, "", msg, interval)
	}

	var wg sync.WaitGroup
	type outcome struct {
		name string
		d    time.Duration
		err  error
		max  time.Duration
	}
	outcomes := make(chan outcome, 8)
	headers := "GET /v1/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + strings.Repeat("s", 100) + "\r\n\r\n"
	body := strings.Repeat("A", 1000)
	slowBody := "PUT /v1/secrets/app/slow HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + h.token + "\r\nContent-Type: application/json\r\nContent-Length: " + "1012" + "\r\n\r\n" + `{"value":"` + body + `"}`
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := trickle(headers, 300*time.Millisecond) // whole header: ~40 s
			outcomes <- outcome{"slow headers", d, err, headerTimeout + 10*time.Second}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Headers at once, then the body a byte per 100 ms (~100 s).
		hdrEnd := strings.Index(slowBody, "\r\n\r\n") + 4
		d, err := trickleAfter(u.Host, h.tls, slowBody[:hdrEnd], slowBody[hdrEnd:], 100*time.Millisecond)
		outcomes <- outcome{"slow body", d, err, readTimeout + 10*time.Second}
	}()

	// Meanwhile the server answers promptly.
	time.Sleep(300 * time.Millisecond)
	for range 5 {
		if r := h.do(t, "GET", "/v1/secrets/app/x", nil, nil); r.status != 200 {
			t.Errorf("during slowloris: %d %s", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	close(outcomes)
	for o := range outcomes {
		if o.err != nil {
			t.Errorf("%s: %v", o.name, o.err)
			continue
		}
		if o.d > o.max {
			t.Errorf("%s: cut off after %v, want at most %v", o.name, o.d, o.max)
		}
		t.Logf("%s: cut off after %v", o.name, o.d.Round(time.Millisecond))
	}
	if r := h.do(t, "GET", "/v1/describe/app/slow", nil, nil); r.status != 404 {
		t.Errorf("the slow body was stored: %d %s", r.status, r.body)
	}
}

// trickleAfter sends head at once, then tail a byte per interval, and
// reports how long until the server closed the connection.
func trickleAfter(host string, cfg *tls.Config, head, tail string, interval time.Duration) (time.Duration, error) {
	conn, err := tls.Dial("tcp", host, cfg)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, head); err != nil {
		return 0, err
	}
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, _ = io.Copy(io.Discard, conn)
		close(closed)
	}()
	for i := 0; i < len(tail); i++ {
		if _, err := conn.Write([]byte{tail[i]}); err != nil {
			break
		}
		select {
		case <-closed:
			return time.Since(start), nil
		case <-time.After(interval):
		}
	}
	select {
	case <-closed:
		return time.Since(start), nil
	case <-time.After(20 * time.Second):
		return time.Since(start), errors.New("the server never closed the connection")
	}
}

// TestThousandConnections opens 1,000 connections at once, each making a
// request: every one succeeds or fails cleanly, and the server answers
// promptly afterwards.
func TestThousandConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,000 connections")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 2500 {
		t.Skipf("the file descriptor limit (%d) is below 2,500: raise it (ulimit -n) to run this test", lim.Cur)
	}
	h, e := envTarget(t)
	const n = 1000
	tr := e.Server.Client().Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true // one connection per request
	tr.MaxConnsPerHost = 0
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	want := base64.StdEncoding.EncodeToString([]byte(hostileCanary))
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var errs []string
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			target := "/v1/secrets/app/x"
			if i%2 == 1 {
				target = "/v1/describe/app/x"
			}
			req, _ := http.NewRequest("GET", h.url+target, nil)
			req.Header.Set("Authorization", "Bearer "+h.token)
			resp, err := hc.Do(req)
			if err != nil {
				failed.Add(1)
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case err != nil:
				failed.Add(1)
			case resp.StatusCode != 200:
				t.Errorf("request %d: %d %s", i, resp.StatusCode, b)
			case i%2 == 0 && !bytes.Contains(b, []byte(want)):
				t.Errorf("request %d: wrong value: %s", i, b)
			default:
				ok.Add(1)
			}
		}()
	}
	begin := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d connections: %d ok, %d failed cleanly, in %v", n, ok.Load(), failed.Load(), time.Since(begin).Round(time.Millisecond))
	if len(errs) > 0 {
		t.Logf("first error: %s", errs[0])
	}
	if ok.Load() < n*9/10 {
		t.Errorf("only %d of %d requests succeeded", ok.Load(), n)
	}
	if r := h.do(t, "GET", "/v1/secrets/app/x", nil, nil); r.status != 200 {
		t.Fatalf("after the burst: %d %s", r.status, r.body)
	}
	if bytes.Contains(e.Log.Bytes(), []byte(hostileCanary)) {
		t.Error("the log holds the canary")
	}
}
