package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passman-dev/passman/secret"
)

// script is a test server answering each request with the next status of
// its list (the last one repeats); 0 drops the connection unanswered.
type script struct {
	mu       sync.Mutex
	statuses []int
	hits     int
	headers  []http.Header
	header   http.Header // set on every answer
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	st := s.statuses[min(s.hits, len(s.statuses)-1)]
	s.hits++
	s.headers = append(s.headers, r.Header.Clone())
	s.mu.Unlock()
	for k, v := range s.header {
		w.Header()[k] = v
	}
	switch {
	case st == 0:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	case st >= 300:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(st)
		_, _ = w.Write([]byte(`{"error":{"class":"` + classFor(st) + `","message":"scripted"}}`))
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}
}

func classFor(st int) string {
	switch st {
	case 404:
		return "not_found"
	case 400:
		return "invalid_argument"
	case 409:
		return "conflict"
	case 503:
		return "audit"
	}
	return "internal"
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

// newScripted returns a client of a scripted TLS server and the waits it
// would have slept.
func newScripted(t *testing.T, statuses ...int) (*Client, *script, *[]time.Duration) {
	t.Helper()
	s := &script{statuses: statuses}
	srv := httptest.NewTLSServer(s)
	t.Cleanup(srv.Close)
	c, err := New(Options{Addr: srv.URL, Token: "pmt_test", Transport: srv.Client().Transport, UserAgent: "ua-test"})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	c.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	return c, s, &waits
}

func TestRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	one := 1
	val := secret.NewValue([]byte("v"))
	for _, tc := range []struct {
		name     string
		statuses []int
		call     func(c *Client) error
		hits     int
		sentinel error
	}{
		{"get retried on 503", []int{503, 503, 200}, func(c *Client) error { _, err := c.Describe(ctx, "a/b"); return err }, 3, nil},
		{"get gives up", []int{503}, func(c *Client) error { _, err := c.Describe(ctx, "a/b"); return err }, 1 + DefaultRetries, secret.ErrAudit},
		{"get retried after a dropped connection", []int{0, 200}, func(c *Client) error { _, err := c.Describe(ctx, "a/b"); return err }, 2, nil},
		{"get not retried on 404", []int{404, 200}, func(c *Client) error { _, err := c.Describe(ctx, "a/b"); return err }, 1, secret.ErrNotFound},
		{"get not retried on 400", []int{400, 200}, func(c *Client) error { _, err := c.Describe(ctx, "a/b"); return err }, 1, secret.ErrInvalidArgument},
		{"put not retried on 503", []int{503, 200}, func(c *Client) error { _, err := c.Put(ctx, "a/b", val, secret.PutOptions{}); return err }, 1, secret.ErrAudit},
		{"put not retried after a dropped connection", []int{0, 200}, func(c *Client) error { _, err := c.Put(ctx, "a/b", val, secret.PutOptions{}); return err }, 1, nil},
		{"put retried on 429", []int{429, 200}, func(c *Client) error { _, err := c.Put(ctx, "a/b", val, secret.PutOptions{}); return err }, 2, nil},
		{"put with CAS retried on 503", []int{503, 200}, func(c *Client) error { _, err := c.Put(ctx, "a/b", val, secret.PutOptions{CAS: &one}); return err }, 2, nil},
		{"rollback not retried on 502", []int{502, 200}, func(c *Client) error { _, err := c.Rollback(ctx, "a/b", 1); return err }, 1, nil},
		{"purge retried on 500", []int{500, 204}, func(c *Client) error { return c.Purge(ctx, "a/b") }, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, s, waits := newScripted(t, tc.statuses...)
			err := tc.call(c)
			if got := s.count(); got != tc.hits {
				t.Errorf("%d attempts, want %d (err %v)", got, tc.hits, err)
			}
			if len(*waits) != tc.hits-1 {
				t.Errorf("%d waits for %d attempts", len(*waits), tc.hits)
			}
			final := tc.statuses[min(tc.hits-1, len(tc.statuses)-1)]
			switch {
			case final < 300 && final != 0 && err != nil:
				t.Errorf("err = %v, want success", err)
			case tc.sentinel != nil && !errors.Is(err, tc.sentinel):
				t.Errorf("err = %v, want %v", err, tc.sentinel)
			case (final >= 300 || final == 0) && err == nil:
				t.Error("no error")
			}
		})
	}
}

func TestRetryAfterAndHeaders(t *testing.T) {
	t.Parallel()
	c, s, waits := newScripted(t, 429, 200)
	s.header = http.Header{"Retry-After": {"3"}}
	if _, err := c.List(context.Background(), secret.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(*waits) != 1 || (*waits)[0] < 3*time.Second {
		t.Errorf("waits %v, want one of at least 3s", *waits)
	}
	for _, h := range s.headers {
		if h.Get("Authorization") != "Bearer pmt_test" || h.Get("User-Agent") != "ua-test" {
			t.Errorf("request headers %v", h)
		}
	}
}

func TestNoRedirects(t *testing.T) {
	t.Parallel()
	c, _, _ := newScripted(t, 302)
	_, err := c.List(context.Background(), secret.ListOptions{})
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 302 {
		t.Fatalf("redirect: %v", err)
	}
}

// TestDialRetried: a connection that cannot be made sent nothing, so even
// a Put without CAS is retried.
func TestDialRetried(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := New(Options{Addr: addr, Token: "pmt_secret_token_text"})
	if err != nil {
		t.Fatal(err)
	}
	var waits int
	c.sleep = func(context.Context, time.Duration) error { waits++; return nil }
	_, err = c.Put(context.Background(), "a/b", secret.NewValue([]byte("v")), secret.PutOptions{})
	if err == nil || waits != DefaultRetries {
		t.Fatalf("put to a closed port: %d waits, %v", waits, err)
	}
	if strings.Contains(err.Error(), "pmt_secret_token_text") {
		t.Errorf("the error quotes the token: %v", err)
	}
}

func TestContextCancelsBackoff(t *testing.T) {
	t.Parallel()
	c, _, _ := newScripted(t, 503)
	c.sleep = sleepCtx
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Describe(ctx, "a/b")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for attempt := range 10 {
		for range 50 {
			d := backoff(attempt, 0)
			hi := min(minBackoff<<attempt, maxBackoff)
			if d < hi/2 || d > hi {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, d, hi/2, hi)
			}
		}
	}
	if d := backoff(0, 5*time.Second); d != 5*time.Second {
		t.Errorf("Retry-After 5s: %v", d)
	}
}

func TestParseAddr(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{
		"https://passman.example:8200": true,
		"passman.example:8200":         true,
		"http://127.0.0.1:8200":        true,
		"http://localhost:8200":        true,
		"http://[::1]:8200":            true,
		"http://passman.example:8200":  false,
		"ftp://passman.example":        false,
		"https://user:pw@host":         false,
		"":                             false,
		"https://host/?q=1":            false,
	} {
		u, err := parseAddr(addr)
		if (err == nil) != ok {
			t.Errorf("parseAddr(%q) = %v, %v; want ok=%v", addr, u, err, ok)
		}
		if err != nil && !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("parseAddr(%q): %v is not invalid_argument", addr, err)
		}
	}
}
