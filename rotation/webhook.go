package rotation

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/passman-dev/passman/secret"
)

// Webhook event types, headers and defaults.
const (
	WebhookEventSet    = "rotation.set"
	WebhookEventTest   = "rotation.test"
	WebhookEventRevoke = "rotation.revoke"

	// WebhookTimestampHeader carries the send time in Unix seconds.
	WebhookTimestampHeader = "X-Passman-Timestamp"
	// WebhookSignatureHeader carries "sha256=" and the hex HMAC-SHA256,
	// keyed by the signing key, of "<timestamp>.<body>".
	WebhookSignatureHeader = "X-Passman-Signature"

	// DefaultWebhookMaxSkew is the window VerifyWebhook accepts a
	// timestamp in when given none.
	DefaultWebhookMaxSkew = 5 * time.Minute
)

const (
	webhookDefaultTimeout = 10 * time.Second
	webhookDefaultRetries = 3
	webhookBackoff        = 500 * time.Millisecond
	webhookMaxBackoff     = 10 * time.Second
	// webhookMaxRetryAfter caps how long a receiver's Retry-After can hold
	// a rotation.
	webhookMaxRetryAfter = 30 * time.Second
	// webhookMaxResponse bounds what is read of a response: a test proof
	// is small, and error bodies are only quoted in part.
	webhookMaxResponse  = 64 << 10
	webhookMaxRedirects = 5
)

// WebhookEvent is the JSON body of every webhook request.
//
// Every delivery attempt is a new event: a retry gets a new ID and
// timestamp (and signature), so a receiver that rejects repeated IDs
// (VerifyWebhookEvent with a ReplayCache) still accepts retries. Receivers
// must therefore apply events idempotently, which they naturally are:
// "set path to this value as version N", "stop accepting version N".
type WebhookEvent struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	Timestamp int64  `json:"timestamp"`
	Path      string `json:"path"`
	Version   int    `json:"version"`
	// Value is the value to apply, in rotation.set events only (base64 in
	// the JSON). It is a secret: receivers must not log the event.
	Value []byte `json:"value,omitempty"`
	// Challenge, in rotation.test events only, is what the receiver must
	// answer WebhookProof for.
	Challenge string `json:"challenge,omitempty"`
}

// WebhookTestResponse is the body a receiver answers a rotation.test event
// with (status 2xx).
type WebhookTestResponse struct {
	Proof string `json:"proof"`
}

// WebhookProof is a receiver's answer to a rotation.test event: the hex
// HMAC-SHA256 of the challenge keyed by the value it holds for the path.
//
// The test event does not carry the value (it went over the wire once,
// in rotation.set) nor a hash of it (a receiver comparing hashes and
// answering 2xx proves only that it answers 2xx). A fresh random challenge
// that only a holder of the value can answer proves the receiver really
// stored it, and the answer is useless to anyone who records it.
func WebhookProof(value []byte, challenge string) string {
	return hex.EncodeToString(webhookProofMAC(value, challenge))
}

func webhookProofMAC(value []byte, challenge string) []byte {
	m := hmac.New(sha256.New, value)
	m.Write([]byte(challenge))
	return m.Sum(nil)
}

// Errors VerifyWebhook and VerifyWebhookEvent return; each wraps
// secret.ErrPermissionDenied.
var (
	ErrWebhookSignature = fmt.Errorf("webhook signature does not verify: %w", secret.ErrPermissionDenied)
	ErrWebhookTimestamp = fmt.Errorf("webhook timestamp not accepted: %w", secret.ErrPermissionDenied)
	ErrWebhookReplay    = fmt.Errorf("webhook event id already received: %w", secret.ErrPermissionDenied)
)

// VerifyWebhook checks a webhook request's signature, in constant time,
// against key, and that its timestamp is within maxSkew of now (either
// way: a timestamp from the future is as suspect as an old one); maxSkew
// <= 0 means DefaultWebhookMaxSkew. body is the request body as read. The
// timestamp window limits replays to maxSkew; VerifyWebhookEvent closes
// it with a ReplayCache.
func VerifyWebhook(r *http.Request, body []byte, key []byte, now time.Time, maxSkew time.Duration) error {
	_, err := verifyWebhook(r, body, key, now, maxSkew)
	return err
}

func verifyWebhook(r *http.Request, body, key []byte, now time.Time, maxSkew time.Duration) (time.Time, error) {
	if len(key) == 0 {
		return time.Time{}, fmt.Errorf("%w: verify webhook: empty key", secret.ErrInvalidArgument)
	}
	if maxSkew <= 0 {
		maxSkew = DefaultWebhookMaxSkew
	}
	tsText := r.Header.Get(WebhookTimestampHeader)
	sigText, ok := strings.CutPrefix(r.Header.Get(WebhookSignatureHeader), "sha256=")
	got, err := hex.DecodeString(sigText)
	if !ok || err != nil || len(got) != sha256.Size {
		return time.Time{}, fmt.Errorf("%w: missing or malformed %s header", ErrWebhookSignature, WebhookSignatureHeader)
	}
	if !hmac.Equal(got, webhookMAC(key, tsText, body)) {
		return time.Time{}, ErrWebhookSignature
	}
	// Parsed after the signature check: it is signed, so it is the
	// sender's, and an unsigned request learns nothing about the window.
	secs, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: malformed %s header", ErrWebhookTimestamp, WebhookTimestampHeader)
	}
	ts := time.Unix(secs, 0)
	if d := now.Sub(ts); d > maxSkew || d < -maxSkew {
		return time.Time{}, fmt.Errorf("%w: sent at %s, %s from now, more than the %s allowed", ErrWebhookTimestamp, ts.UTC().Format(time.RFC3339), d.Round(time.Second), maxSkew)
	}
	return ts, nil
}

// ReplayCache remembers the event ids a receiver has accepted.
type ReplayCache interface {
	// Seen reports whether id was recorded and has not expired at now;
	// if not, it records id until expires. It must be atomic: two
	// concurrent calls with one id must not both report false.
	Seen(id string, now, expires time.Time) bool
}

// VerifyWebhookEvent is VerifyWebhook, then decodes the event, checks that
// its timestamp is the signed header's, and, given a ReplayCache, rejects
// an event id already seen within the window: a replay of a captured
// request fails even inside maxSkew. Ids are remembered until the event's
// timestamp leaves the window, after which VerifyWebhook rejects it anyway.
func VerifyWebhookEvent(r *http.Request, body, key []byte, now time.Time, maxSkew time.Duration, seen ReplayCache) (WebhookEvent, error) {
	ts, err := verifyWebhook(r, body, key, now, maxSkew)
	if err != nil {
		return WebhookEvent{}, err
	}
	if maxSkew <= 0 {
		maxSkew = DefaultWebhookMaxSkew
	}
	var ev WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return WebhookEvent{}, fmt.Errorf("%w: webhook body is not an event: %w", secret.ErrInvalidArgument, err)
	}
	if ev.Timestamp != ts.Unix() {
		return WebhookEvent{}, fmt.Errorf("%w: the body's timestamp is not the header's", ErrWebhookTimestamp)
	}
	if ev.ID == "" {
		return WebhookEvent{}, fmt.Errorf("%w: webhook event has no id", secret.ErrInvalidArgument)
	}
	// Only after the signature verified: unsigned requests cannot fill
	// the cache.
	if seen != nil && seen.Seen(ev.ID, now, ts.Add(maxSkew)) {
		return WebhookEvent{}, ErrWebhookReplay
	}
	return ev, nil
}

// MemoryReplayCache is a ReplayCache in memory, for a single receiver
// process. It holds the ids of one skew window; since only signed events
// get in, its size is bounded by what the sender sends.
type MemoryReplayCache struct {
	mu  sync.Mutex
	ids map[string]time.Time
}

// NewMemoryReplayCache returns an empty cache.
func NewMemoryReplayCache() *MemoryReplayCache {
	return &MemoryReplayCache{ids: map[string]time.Time{}}
}

// Seen implements ReplayCache.
func (c *MemoryReplayCache) Seen(id string, now, expires time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, exp := range c.ids {
		if !now.Before(exp) {
			delete(c.ids, k)
		}
	}
	if _, ok := c.ids[id]; ok {
		return true
	}
	c.ids[id] = expires
	return false
}

func webhookMAC(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Webhook is the connector that hands a rotated value to an HTTP receiver
// the owner of the target runs. Config:
//
//	url          where events are POSTed: http or https (required). Plain
//	             http sends the value in clear; use it only on a trusted
//	             network or to loopback.
//	signing_key  reference to the HMAC key, "env:NAME" or "secret:PATH",
//	             resolved at each step (required)
//	timeout      per attempt (default 10s)
//	retries      further attempts after a failure (default 3), with
//	             exponential backoff and jitter
//
// Set POSTs a rotation.set event carrying the value, Test a rotation.test
// event carrying a challenge the receiver must answer (see WebhookProof),
// Revoke a rotation.revoke event with the version. Each request is signed
// (see WebhookSignatureHeader; receivers check it with VerifyWebhook or
// VerifyWebhookEvent). A 2xx answer is success; network errors, timeouts,
// 408, 429 and 5xx are retried; other answers fail at once. Redirects are
// followed only to the same scheme and host and only when they keep the
// POST and its body (307, 308): a signed event carrying a value must not
// be forwarded to a host nobody configured.
func Webhook(cfg map[string]string, r Resolver) (Connector, error) {
	if err := CheckKeys(cfg, []string{"url", "signing_key"}, []string{"timeout", "retries"}); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%w: webhook connector needs a resolver for its signing key", secret.ErrInvalidArgument)
	}
	u, err := url.Parse(cfg["url"])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("%w: config key \"url\": must be an absolute http or https URL without credentials or fragment", secret.ErrInvalidArgument)
	}
	if err := checkCredentialRef("signing_key", cfg["signing_key"]); err != nil {
		return nil, err
	}
	w := &webhookConnector{
		resolver:   r,
		url:        u,
		keyRef:     cfg["signing_key"],
		backoff:    webhookBackoff,
		maxBackoff: webhookMaxBackoff,
		now:        time.Now,
	}
	if w.timeout, err = parseDurationKey(cfg, "timeout", webhookDefaultTimeout, 10*time.Millisecond, 5*time.Minute); err != nil {
		return nil, err
	}
	if w.retries, err = parseIntKey(cfg, "retries", webhookDefaultRetries, 0, 10); err != nil {
		return nil, err
	}
	w.client = &http.Client{CheckRedirect: w.checkRedirect}
	return w, nil
}

type webhookConnector struct {
	resolver            Resolver
	url                 *url.URL
	keyRef              string
	timeout             time.Duration
	retries             int
	client              *http.Client
	backoff, maxBackoff time.Duration // tests shorten them
	now                 func() time.Time
}

func (w *webhookConnector) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= webhookMaxRedirects {
		return fmt.Errorf("stopped after %d redirects", len(via))
	}
	from := via[0].URL
	if req.URL.Scheme != from.Scheme || !strings.EqualFold(req.URL.Host, from.Host) || req.Method != http.MethodPost {
		// Returned as the answer, which is then a failure (not 2xx).
		return http.ErrUseLastResponse
	}
	return nil
}

// receiverName names the receiver in messages. Not its URL: that is the
// connection's configuration (a receiver's URL is often a capability), and
// connector errors become the rotation's status, which the secret's
// readers see.
const receiverName = "the webhook receiver"

// Set implements Connector.
func (w *webhookConnector) Set(ctx context.Context, t Target) error {
	_, err := w.deliver(ctx, t, WebhookEvent{Type: WebhookEventSet, Path: t.Path, Version: t.Version, Value: t.Value.Reveal()})
	return err
}

// Test implements Connector: the receiver must answer the challenge with
// WebhookProof of the value, proving it holds it.
func (w *webhookConnector) Test(ctx context.Context, t Target) error {
	var c [32]byte
	if _, err := rand.Read(c[:]); err != nil {
		return fmt.Errorf("webhook test %s v%d: challenge: %w", t.Path, t.Version, err)
	}
	challenge := base64.RawURLEncoding.EncodeToString(c[:])
	body, err := w.deliver(ctx, t, WebhookEvent{Type: WebhookEventTest, Path: t.Path, Version: t.Version, Challenge: challenge})
	if err != nil {
		return err
	}
	var resp WebhookTestResponse
	if err := json.Unmarshal(body, &resp); err != nil || resp.Proof == "" {
		return fmt.Errorf("%w: webhook test %s v%d: %s answered without a proof (want JSON {\"proof\": ...}, see WebhookProof)", secret.ErrPrecondition, t.Path, t.Version, receiverName)
	}
	got, err := hex.DecodeString(resp.Proof)
	if err != nil || !hmac.Equal(got, webhookProofMAC(t.Value.Reveal(), challenge)) {
		return fmt.Errorf("%w: webhook test %s v%d: %s does not hold this version's value (wrong proof)", secret.ErrPrecondition, t.Path, t.Version, receiverName)
	}
	return nil
}

// Revoke implements Connector. The event names the version only: the
// receiver knows which value that was.
func (w *webhookConnector) Revoke(ctx context.Context, t Target) error {
	_, err := w.deliver(ctx, t, WebhookEvent{Type: WebhookEventRevoke, Path: t.Path, Version: t.Version})
	return err
}

// webhookAttempt is one attempt's outcome.
type webhookAttempt struct {
	body       []byte
	err        error
	retry      bool
	retryAfter time.Duration
}

// deliver sends ev, retrying, and returns the successful answer's body.
func (w *webhookConnector) deliver(ctx context.Context, t Target, ev WebhookEvent) ([]byte, error) {
	step := strings.TrimPrefix(ev.Type, "rotation.")
	value := t.Value.Reveal()
	key, err := resolveCredential(ctx, w.resolver, "signing_key", w.keyRef)
	if err != nil {
		return nil, fmt.Errorf("webhook %s %s v%d: %w", step, t.Path, t.Version, err)
	}
	// Everything a careless receiver might echo back into an error.
	secrets := [][]byte{value, []byte(base64.StdEncoding.EncodeToString(value)), key.Reveal(), t.Current.Reveal()}
	var last webhookAttempt
	attempts := 0
	for attempts <= w.retries {
		if attempts > 0 {
			if err := w.wait(ctx, attempts, last.retryAfter); err != nil {
				break
			}
		}
		attempts++
		last = w.attempt(ctx, ev, key.Reveal(), secrets)
		if last.err == nil {
			return last.body, nil
		}
		if !last.retry || ctx.Err() != nil {
			break
		}
	}
	err = last.err
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), last.err)
	}
	if attempts > 1 {
		return nil, fmt.Errorf("webhook %s %s v%d: gave up after %d attempts: %w", step, t.Path, t.Version, attempts, err)
	}
	return nil, fmt.Errorf("webhook %s %s v%d: %w", step, t.Path, t.Version, err)
}

// attempt signs and POSTs ev once, as a new event (new id and timestamp).
func (w *webhookConnector) attempt(ctx context.Context, ev WebhookEvent, key []byte, secrets [][]byte) webhookAttempt {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return webhookAttempt{err: fmt.Errorf("event id: %w", err)}
	}
	ev.ID = hex.EncodeToString(id[:])
	ev.Timestamp = w.now().Unix()
	body, err := json.Marshal(ev)
	if err != nil {
		return webhookAttempt{err: fmt.Errorf("encode event: %w", err)}
	}
	// The body holds the value in a set event; drop this copy when done.
	defer clear(body)
	ts := strconv.FormatInt(ev.Timestamp, 10)

	actx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, w.url.String(), bytes.NewReader(body))
	if err != nil {
		return webhookAttempt{err: fmt.Errorf("POST %s: %w: cannot build the request", receiverName, secret.ErrInvalidArgument)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "passman-rotation")
	req.Header.Set(WebhookTimestampHeader, ts)
	req.Header.Set(WebhookSignatureHeader, "sha256="+hex.EncodeToString(webhookMAC(key, ts, body)))
	resp, err := w.client.Do(req)
	if err != nil {
		// url.Error quotes the full URL and a dial error the address:
		// only the cause is said.
		if actx.Err() != nil && ctx.Err() == nil {
			return webhookAttempt{err: fmt.Errorf("POST %s: no answer within %s: %w", receiverName, w.timeout, context.DeadlineExceeded), retry: true}
		}
		return webhookAttempt{err: fmt.Errorf("POST %s: %s", receiverName, netCause(err)), retry: true}
	}
	defer resp.Body.Close()
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, webhookMaxResponse+1))
	truncated := len(raw) > webhookMaxResponse
	if truncated {
		raw = raw[:webhookMaxResponse]
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		if readErr != nil {
			return webhookAttempt{err: fmt.Errorf("POST %s: read answer: %w", receiverName, readErr), retry: true}
		}
		return webhookAttempt{body: raw}
	}
	a := webhookAttempt{err: fmt.Errorf("POST %s: answered %s%s", receiverName, resp.Status, webhookQuote(raw, truncated, secrets))}
	switch c := resp.StatusCode; {
	case c >= 300 && c <= 399:
		a.err = fmt.Errorf("%w (a redirect to another host, or one that would drop the POST, is not followed)", a.err)
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests, c >= 500:
		a.retry = true
		a.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), w.now())
	}
	return a
}

// webhookQuote is the start of an error answer, for the error message,
// with secrets removed and control characters flattened.
func webhookQuote(raw []byte, truncated bool, secrets [][]byte) string {
	s := strings.TrimSpace(redactCaptured(raw, truncated, secrets...))
	if s == "" {
		return ""
	}
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return ": " + strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// wait sleeps before attempt n+1: exponential backoff with jitter (so
// that receivers recovering from an outage are not hit by every sender at
// once), at least the receiver's Retry-After (capped).
func (w *webhookConnector) wait(ctx context.Context, n int, retryAfter time.Duration) error {
	d := w.backoff << (n - 1)
	if d > w.maxBackoff || d <= 0 {
		d = w.maxBackoff
	}
	d = d/2 + mrand.N(d/2+1)
	if retryAfter > d {
		d = min(retryAfter, webhookMaxRetryAfter)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return t.Sub(now)
	}
	return 0
}

// redactCaptured turns output captured from an untrusted party (a child's
// stderr, a receiver's answer) into text without the secrets. When the
// capture was cut short, a secret may have been cut too: a tail that is
// the beginning of a secret is dropped as well.
func redactCaptured(b []byte, truncated bool, secrets ...[]byte) string {
	if truncated {
		for _, s := range secrets {
			b = trimSecretPrefixSuffix(b, s)
		}
	}
	return redactString(strings.ToValidUTF8(string(b), "\uFFFD"), secrets...)
}

// trimSecretPrefixSuffix drops the longest tail of b that is a proper,
// non-empty prefix of s.
func trimSecretPrefixSuffix(b, s []byte) []byte {
	if len(s) < 2 {
		return b
	}
	start := max(len(b)-(len(s)-1), 0)
	for i := start; i < len(b); i++ {
		if b[i] == s[0] && bytes.HasPrefix(s, b[i:]) {
			return b[:i]
		}
	}
	return b
}
