package rotation

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passman-dev/passman/secret"
)

const webhookTestKey = "whsec_KEY_canary_6f2b91"

// webhookTestReceiver is a receiver as a user would write one: it
// verifies each event, keeps the values, and answers test challenges.
type webhookTestReceiver struct {
	t     *testing.T
	cache ReplayCache

	mu     sync.Mutex
	events []WebhookEvent
	values map[string][]byte
	// status, when set, overrides the answer to attempt n (from 1);
	// 0 means answer normally.
	status func(n int) int
}

func newWebhookTestReceiver(t *testing.T) (*webhookTestReceiver, *httptest.Server) {
	rc := &webhookTestReceiver{t: t, cache: NewMemoryReplayCache(), values: map[string][]byte{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

func (rc *webhookTestReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	ev, err := VerifyWebhookEvent(r, body, []byte(webhookTestKey), time.Now(), time.Minute, rc.cache)
	if err != nil {
		rc.t.Errorf("receiver: %v", err)
		http.Error(w, "unverified", http.StatusUnauthorized)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.events = append(rc.events, ev)
	if rc.status != nil {
		if code := rc.status(len(rc.events)); code != 0 {
			w.WriteHeader(code)
			return
		}
	}
	switch ev.Type {
	case WebhookEventSet:
		rc.values[ev.Path] = ev.Value
		w.WriteHeader(http.StatusNoContent)
	case WebhookEventTest:
		_ = json.NewEncoder(w).Encode(WebhookTestResponse{Proof: WebhookProof(rc.values[ev.Path], ev.Challenge)})
	case WebhookEventRevoke:
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "unknown event", http.StatusBadRequest)
	}
}

func (rc *webhookTestReceiver) received() []WebhookEvent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]WebhookEvent(nil), rc.events...)
}

func webhookTestConnector(t *testing.T, url string, cfg map[string]string) *webhookConnector {
	t.Helper()
	full := map[string]string{"url": url, "signing_key": "env:WEBHOOK_KEY"}
	for k, v := range cfg {
		full[k] = v
	}
	c, err := Webhook(full, &connTestResolver{refs: map[string]string{"env:WEBHOOK_KEY": webhookTestKey}})
	if err != nil {
		t.Fatalf("Webhook(%v): %v", full, err)
	}
	w := c.(*webhookConnector)
	w.backoff, w.maxBackoff = time.Millisecond, 5*time.Millisecond
	return w
}

func TestWebhookRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rc, srv := newWebhookTestReceiver(t)
	c := webhookTestConnector(t, srv.URL+"/hooks/passman?tenant=a", nil)
	target := Target{Path: "app/db", Version: 7, Value: secret.NewValue([]byte("new-value-\x00\xff-binary"))}

	if err := c.Set(ctx, target); err != nil {
		t.Fatalf("set: %v", err)
	}
	if err := c.Test(ctx, target); err != nil {
		t.Fatalf("test: %v", err)
	}
	if err := c.Revoke(ctx, Target{Path: "app/db", Version: 6, Value: secret.NewValue([]byte("old"))}); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	evs := rc.received()
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	set, test, revoke := evs[0], evs[1], evs[2]
	if set.Type != WebhookEventSet || set.Path != "app/db" || set.Version != 7 || !bytes.Equal(set.Value, target.Value.Reveal()) || set.ID == "" {
		t.Errorf("set event: %+v", set)
	}
	if test.Type != WebhookEventTest || test.Value != nil || len(test.Challenge) < 40 || test.Version != 7 {
		t.Errorf("test event must carry a challenge and no value: %+v", test)
	}
	if revoke.Type != WebhookEventRevoke || revoke.Value != nil || revoke.Version != 6 {
		t.Errorf("revoke event: %+v", revoke)
	}

	// A receiver holding another value fails the test.
	rc.mu.Lock()
	rc.values["app/db"] = []byte("stale")
	rc.mu.Unlock()
	if err := c.Test(ctx, target); !errors.Is(err, secret.ErrPrecondition) {
		t.Fatalf("test against a stale receiver: %v", err)
	}
	// So does one that answers 2xx without a proof.
	rc.mu.Lock()
	rc.status = func(int) int { return http.StatusOK }
	rc.mu.Unlock()
	if err := c.Test(ctx, target); !errors.Is(err, secret.ErrPrecondition) {
		t.Fatalf("test against a receiver that proves nothing: %v", err)
	}
}

// webhookTestRequest builds a request as the connector signs it.
func webhookTestRequest(t *testing.T, key string, ts int64, ev WebhookEvent) (*http.Request, []byte) {
	t.Helper()
	ev.Timestamp = ts
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
	tsText := strconv.FormatInt(ts, 10)
	r.Header.Set(WebhookTimestampHeader, tsText)
	r.Header.Set(WebhookSignatureHeader, "sha256="+hex.EncodeToString(webhookMAC([]byte(key), tsText, body)))
	return r, body
}

func TestVerifyWebhook(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	key := []byte(webhookTestKey)
	ev := WebhookEvent{Type: WebhookEventSet, ID: "e1", Path: "p", Version: 1, Value: []byte("v")}

	r, body := webhookTestRequest(t, webhookTestKey, now.Unix(), ev)
	if err := VerifyWebhook(r, body, key, now, time.Minute); err != nil {
		t.Fatalf("valid request: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(r *http.Request, body []byte) []byte
		key    string
		ts     int64
		want   error
	}{
		{name: "tampered body", mutate: func(_ *http.Request, b []byte) []byte {
			return bytes.Replace(b, []byte(`"version":1`), []byte(`"version":2`), 1)
		}, want: ErrWebhookSignature},
		{name: "wrong key", key: "other-key", want: ErrWebhookSignature},
		{name: "old timestamp", ts: now.Unix() - 61, want: ErrWebhookTimestamp},
		{name: "future timestamp", ts: now.Unix() + 61, want: ErrWebhookTimestamp},
		{name: "timestamp header changed", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Set(WebhookTimestampHeader, strconv.FormatInt(now.Unix()+1, 10))
			return b
		}, want: ErrWebhookSignature},
		{name: "no signature", mutate: func(r *http.Request, b []byte) []byte { r.Header.Del(WebhookSignatureHeader); return b }, want: ErrWebhookSignature},
		{name: "other algorithm", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Set(WebhookSignatureHeader, strings.Replace(r.Header.Get(WebhookSignatureHeader), "sha256=", "sha1=", 1))
			return b
		}, want: ErrWebhookSignature},
		{name: "short signature", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Set(WebhookSignatureHeader, r.Header.Get(WebhookSignatureHeader)[:40])
			return b
		}, want: ErrWebhookSignature},
	} {
		k, ts := webhookTestKey, now.Unix()
		if tc.key != "" {
			k = tc.key
		}
		if tc.ts != 0 {
			ts = tc.ts
		}
		r, body := webhookTestRequest(t, k, ts, ev)
		if tc.mutate != nil {
			body = tc.mutate(r, body)
		}
		err := VerifyWebhook(r, body, key, now, time.Minute)
		if !errors.Is(err, tc.want) || !errors.Is(err, secret.ErrPermissionDenied) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), webhookTestKey) {
			t.Errorf("%s: error holds the key", tc.name)
		}
	}
	// maxSkew 0 is the default window.
	r, body = webhookTestRequest(t, webhookTestKey, now.Add(-DefaultWebhookMaxSkew+time.Second).Unix(), ev)
	if err := VerifyWebhook(r, body, key, now, 0); err != nil {
		t.Errorf("inside the default window: %v", err)
	}
	if err := VerifyWebhook(r, body, nil, now, 0); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("empty key: %v", err)
	}
}

func TestVerifyWebhookEventReplay(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	key := []byte(webhookTestKey)
	cache := NewMemoryReplayCache()
	ev := WebhookEvent{Type: WebhookEventRevoke, ID: "evt-1", Path: "p", Version: 3}

	r, body := webhookTestRequest(t, webhookTestKey, now.Unix(), ev)
	got, err := VerifyWebhookEvent(r, body, key, now, time.Minute, cache)
	if err != nil || got.ID != "evt-1" || got.Version != 3 {
		t.Fatalf("first delivery: %+v %v", got, err)
	}
	// The same request again, within the window: a replay.
	r, body = webhookTestRequest(t, webhookTestKey, now.Unix(), ev)
	if _, err := VerifyWebhookEvent(r, body, key, now.Add(10*time.Second), time.Minute, cache); !errors.Is(err, ErrWebhookReplay) {
		t.Fatalf("replayed id: %v", err)
	}
	// Another id is fine.
	ev.ID = "evt-2"
	r, body = webhookTestRequest(t, webhookTestKey, now.Unix(), ev)
	if _, err := VerifyWebhookEvent(r, body, key, now, time.Minute, cache); err != nil {
		t.Fatalf("new id: %v", err)
	}
	// An unsigned request does not get its id into the cache.
	ev.ID = "evt-3"
	r, body = webhookTestRequest(t, "wrong", now.Unix(), ev)
	if _, err := VerifyWebhookEvent(r, body, key, now, time.Minute, cache); !errors.Is(err, ErrWebhookSignature) {
		t.Fatalf("unsigned: %v", err)
	}
	r, body = webhookTestRequest(t, webhookTestKey, now.Unix(), ev)
	if _, err := VerifyWebhookEvent(r, body, key, now, time.Minute, cache); err != nil {
		t.Fatalf("evt-3 after an unsigned attempt with its id: %v", err)
	}
	// A body timestamp that is not the signed header's.
	ev.ID = "evt-4"
	r, body = webhookTestRequest(t, webhookTestKey, now.Unix(), ev)
	body = bytes.Replace(body, []byte(strconv.FormatInt(now.Unix(), 10)), []byte(strconv.FormatInt(now.Unix()-5, 10)), 1)
	tsText := r.Header.Get(WebhookTimestampHeader)
	r.Header.Set(WebhookSignatureHeader, "sha256="+hex.EncodeToString(webhookMAC(key, tsText, body)))
	if _, err := VerifyWebhookEvent(r, body, key, now, time.Minute, cache); !errors.Is(err, ErrWebhookTimestamp) {
		t.Fatalf("mismatched body timestamp: %v", err)
	}
	// Expired ids are forgotten.
	if cache.Seen("evt-1", now.Add(2*time.Minute), now.Add(3*time.Minute)) {
		t.Error("an expired id is still remembered")
	}
}

func TestWebhookRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	target := Target{Path: "p", Version: 1, Value: secret.NewValue([]byte("v"))}

	t.Run("503 then success", func(t *testing.T) {
		t.Parallel()
		rc, srv := newWebhookTestReceiver(t)
		rc.status = func(n int) int {
			if n <= 2 {
				return http.StatusServiceUnavailable
			}
			return 0
		}
		if err := webhookTestConnector(t, srv.URL, nil).Set(ctx, target); err != nil {
			t.Fatalf("set: %v", err)
		}
		evs := rc.received()
		if len(evs) != 3 {
			t.Fatalf("%d attempts, want 3", len(evs))
		}
		if evs[0].ID == evs[1].ID || evs[1].ID == evs[2].ID {
			t.Errorf("retries must be new events (new ids): %q %q %q", evs[0].ID, evs[1].ID, evs[2].ID)
		}
	})
	t.Run("no retry on 400", func(t *testing.T) {
		t.Parallel()
		rc, srv := newWebhookTestReceiver(t)
		rc.status = func(int) int { return http.StatusBadRequest }
		err := webhookTestConnector(t, srv.URL, nil).Set(ctx, target)
		if err == nil || !strings.Contains(err.Error(), "400") {
			t.Fatalf("set: %v", err)
		}
		if n := len(rc.received()); n != 1 {
			t.Fatalf("%d attempts, want 1", n)
		}
	})
	t.Run("429 retried until retries run out", func(t *testing.T) {
		t.Parallel()
		rc, srv := newWebhookTestReceiver(t)
		rc.status = func(int) int { return http.StatusTooManyRequests }
		err := webhookTestConnector(t, srv.URL, map[string]string{"retries": "2"}).Set(ctx, target)
		if err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts") || !strings.Contains(err.Error(), "429") {
			t.Fatalf("set: %v", err)
		}
		if n := len(rc.received()); n != 3 {
			t.Fatalf("%d attempts, want 3", n)
		}
	})
	t.Run("cancelled during backoff", func(t *testing.T) {
		t.Parallel()
		rc, srv := newWebhookTestReceiver(t)
		rc.status = func(int) int { return http.StatusBadGateway }
		c := webhookTestConnector(t, srv.URL, nil)
		c.backoff, c.maxBackoff = time.Minute, time.Minute
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := c.Set(cctx, target)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Fatalf("set: %v after %s", err, time.Since(start))
		}
	})
}

func TestWebhookTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := webhookTestConnector(t, srv.URL, map[string]string{"timeout": "50ms", "retries": "1"})
	start := time.Now()
	err := c.Set(context.Background(), Target{Path: "p", Version: 1, Value: secret.NewValue([]byte("v"))})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Fatalf("set: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
}

func TestWebhookRedirects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	target := Target{Path: "p", Version: 1, Value: secret.NewValue([]byte("redirect-value-canary"))}
	var mu sync.Mutex
	elsewhere := 0
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		elsewhere++
		mu.Unlock()
	}))
	t.Cleanup(other.Close)
	rc, recv := newWebhookTestReceiver(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/hook", http.StatusPermanentRedirect)
	})
	mux.HandleFunc("/see-other", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/hook", http.StatusFound)
	})
	mux.Handle("/hook", rc)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	_ = recv

	err := webhookTestConnector(t, srv.URL+"/away", nil).Set(ctx, target)
	if err == nil || !strings.Contains(err.Error(), "307") || !strings.Contains(err.Error(), "not followed") {
		t.Fatalf("redirect to another host: %v", err)
	}
	mu.Lock()
	if elsewhere != 0 {
		t.Fatalf("the other host got %d requests", elsewhere)
	}
	mu.Unlock()
	// A 302 would turn the POST into a GET without the event.
	if err := webhookTestConnector(t, srv.URL+"/see-other", nil).Set(ctx, target); err == nil || !strings.Contains(err.Error(), "302") {
		t.Fatalf("302: %v", err)
	}
	// Same host, body kept: followed, and the signature still verifies.
	if err := webhookTestConnector(t, srv.URL+"/moved", nil).Set(ctx, target); err != nil {
		t.Fatalf("same-host 308: %v", err)
	}
	if evs := rc.received(); len(evs) != 1 || string(evs[0].Value) != "redirect-value-canary" {
		t.Fatalf("events after the same-host redirect: %+v", evs)
	}
}

func TestWebhookErrorsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const value = "VALUE_canary_9d3e5b7a1c"
	b64 := base64.StdEncoding.EncodeToString([]byte(value))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusBadRequest)
		switch r.URL.Path {
		case "/echo": // the request, and the value and key as they are
			_, _ = w.Write(body)
			_, _ = io.WriteString(w, " raw "+value+" key "+webhookTestKey)
		case "/cut": // the value straddles the 64 KiB read limit
			_, _ = w.Write(bytes.Repeat([]byte("x"), webhookMaxResponse-5))
			_, _ = io.WriteString(w, value+strings.Repeat("y", 100))
		case "/lead": // a value at the start, the rest cut off
			_, _ = io.WriteString(w, value+strings.Repeat("z", 100_000))
		}
	}))
	t.Cleanup(srv.Close)
	target := Target{Path: "p", Version: 1, Value: secret.NewValue([]byte(value)), Current: secret.NewValue([]byte("CURRENT_canary_44"))}
	var errs []error
	for _, path := range []string{"/echo", "/cut", "/lead"} {
		c := webhookTestConnector(t, srv.URL+path+"?token=QUERY_canary_71", nil)
		errs = append(errs, c.Set(ctx, target), c.Test(ctx, target), c.Revoke(ctx, target))
	}
	// Resolution failure and a closed server.
	c, _ := Webhook(map[string]string{"url": srv.URL + "?token=QUERY_canary_71", "signing_key": "env:MISSING"}, &connTestResolver{refs: map[string]string{}})
	errs = append(errs, c.Set(ctx, target))
	closed := webhookTestConnector(t, srv.URL+"/echo?token=QUERY_canary_71", map[string]string{"retries": "0"})
	srv.Close()
	errs = append(errs, closed.Set(ctx, target))

	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		msg := err.Error()
		for _, canary := range []string{value, value[:5], b64, b64[:8], webhookTestKey, "CURRENT_canary", "QUERY_canary"} {
			if strings.Contains(msg, canary) {
				t.Errorf("case %d leaks %q: %s", i, canary, msg)
			}
		}
	}
	// The echo must have been quoted, redacted, for this test to mean
	// anything.
	if n := strings.Count(errs[0].Error(), "[redacted]"); n != 3 {
		t.Errorf("echoed set: %d redactions, want 3 (base64 value, value, key): %v", n, errs[0])
	}
}

func TestWebhookConfig(t *testing.T) {
	t.Parallel()
	r := &connTestResolver{}
	for _, tc := range []struct {
		name string
		cfg  map[string]string
		key  string
	}{
		{"minimal", map[string]string{"url": "https://example.com/hook", "signing_key": "secret:hooks/key"}, ""},
		{"full", map[string]string{"url": "http://10.0.0.1:8080/h?x=1", "signing_key": "env:K", "timeout": "2s", "retries": "0"}, ""},
		{"no url", map[string]string{"signing_key": "env:K"}, "url"},
		{"ftp url", map[string]string{"url": "ftp://example.com", "signing_key": "env:K"}, "url"},
		{"relative url", map[string]string{"url": "/hook", "signing_key": "env:K"}, "url"},
		{"url with credentials", map[string]string{"url": "https://u:p@example.com", "signing_key": "env:K"}, "url"},
		{"no key", map[string]string{"url": "https://example.com"}, "signing_key"},
		{"literal key", map[string]string{"url": "https://example.com", "signing_key": "s3cr3t"}, "signing_key"},
		{"bad timeout", map[string]string{"url": "https://example.com", "signing_key": "env:K", "timeout": "10"}, "timeout"},
		{"negative timeout", map[string]string{"url": "https://example.com", "signing_key": "env:K", "timeout": "-1s"}, "timeout"},
		{"bad retries", map[string]string{"url": "https://example.com", "signing_key": "env:K", "retries": "many"}, "retries"},
		{"too many retries", map[string]string{"url": "https://example.com", "signing_key": "env:K", "retries": "99"}, "retries"},
		{"unknown key", map[string]string{"url": "https://example.com", "signing_key": "env:K", "method": "PUT"}, "method"},
	} {
		_, err := Webhook(tc.cfg, r)
		switch {
		case tc.key == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.key != "" && (!errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), `"`+tc.key+`"`)):
			t.Errorf("%s: error %v, want invalid argument naming %q", tc.name, err, tc.key)
		}
	}
}

func TestTrimSecretPrefixSuffix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ b, s, want string }{
		{"xxxabc", "abcdef", "xxx"},
		{"xxxa", "abcdef", "xxx"},
		{"xxxabcdef", "abcdef", "xxxabcdef"}, // whole: redaction's job
		{"xxxb", "abcdef", "xxxb"},
		{"abab", "ababx", ""},
		{"", "abc", ""},
	} {
		if got := string(trimSecretPrefixSuffix([]byte(tc.b), []byte(tc.s))); got != tc.want {
			t.Errorf("trim(%q, %q) = %q, want %q", tc.b, tc.s, got, tc.want)
		}
	}
}

// TestWebhookErrorsHideTheReceiver: a failed delivery's error names no
// part of the receiver's URL (often a capability, and the connection's
// configuration): the error becomes the rotation's status, which the
// secret's readers see.
func TestWebhookErrorsHideTheReceiver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	target := Target{Path: "app/hook", Version: 2, Value: secret.NewValue([]byte("hook-value-1"))}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer srv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	for name, url := range map[string]string{"5xx": srv.URL, "refused": closed} {
		err := webhookTestConnector(t, url+"/services/cap-canary-7e1?token=q-canary-7e1", map[string]string{"retries": "0"}).Set(ctx, target)
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		host := strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
		for _, part := range []string{"cap-canary-7e1", "q-canary-7e1", host} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("%s: error names %q: %v", name, part, err)
			}
		}
		t.Logf("%s: %v", name, err)
	}
}
