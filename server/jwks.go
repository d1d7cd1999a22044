package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// JWKS fetch limits.
const (
	// JWKSMinRefetch is the least time between two fetches of the issuer's
	// keys. go-oidc's RemoteKeySet fetches them again for every token no
	// cached key verifies (an unknown kid, or a known kid with a forged
	// signature), coalescing only concurrent fetches, so each forged token
	// sent to the public login route became a request to the issuer. An
	// issuer publishes a new key before it signs with it, so a bound costs
	// a legitimate token nothing unless it carries a key published in the
	// last half minute, and then its job can retry.
	JWKSMinRefetch = 30 * time.Second
	// maxJWKSBytes bounds the key set read from the issuer: GitHub's is
	// a few KiB.
	maxJWKSBytes = 1 << 20
)

// keySet is an oidc.KeySet over the issuer's JWKS: it caches the keys and
// fetches them again when no cached key verifies a token, at most once per
// JWKSMinRefetch, whatever the tokens say.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	// fetching is held by the one request fetching; others wait on it (or
	// give up when their request ends) and then use what it fetched.
	fetching chan struct{}

	mu   sync.RWMutex
	keys []jose.JSONWebKey
	gen  uint64    // counts successful fetches
	last time.Time // the last fetch attempt, successful or not
}

func newKeySet(url string, client *http.Client, now func() time.Time) *keySet {
	return &keySet{url: url, client: client, now: now, fetching: make(chan struct{}, 1)}
}

// errKeysRateLimited is a token no cached key verifies while the keys were
// fetched too recently to fetch them again.
var errKeysRateLimited = errors.New("no cached key verifies the signature, and the JWKS was fetched less than " + JWKSMinRefetch.String() + " ago")

// VerifySignature implements oidc.KeySet. go-oidc has checked the
// algorithm (RS256 or ES256) and that there is one signature.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(jwt, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.RLock()
	keys, gen := k.keys, k.gen
	k.mu.RUnlock()
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	if keys, err = k.refresh(ctx, gen); err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	return nil, errors.New("no published key verifies the signature")
}

// verifyWith tries the keys with the token's kid (every key when it has
// none, as go-oidc does).
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for i := range keys {
		if (kid == "" || keys[i].KeyID == kid) && keys[i].Use != "enc" {
			if payload, err := jws.Verify(&keys[i]); err == nil {
				return payload, true
			}
		}
	}
	return nil, false
}

// refresh fetches the keys unless another request did since seen was
// current, or the last attempt was under JWKSMinRefetch ago.
func (k *keySet) refresh(ctx context.Context, seen uint64) ([]jose.JSONWebKey, error) {
	select {
	case k.fetching <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-k.fetching }()
	k.mu.RLock()
	keys, gen, last := k.keys, k.gen, k.last
	k.mu.RUnlock()
	if gen != seen {
		return keys, nil
	}
	now := k.now()
	if d := now.Sub(last); !last.IsZero() && d >= 0 && d < JWKSMinRefetch {
		return nil, errKeysRateLimited
	}
	k.mu.Lock()
	k.last = now
	k.mu.Unlock()
	// Not the request's context: a caller hanging up must not cancel a
	// fetch whose attempt already counts against the bound. The client's
	// timeout bounds it.
	fetched, err := k.fetch(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.keys, k.gen = fetched, k.gen+1
	k.mu.Unlock()
	return fetched, nil
}

// fetch reads the JWKS. Keys of a type or algorithm go-jose does not
// support are skipped (RFC 7517 section 5: implementations SHOULD ignore
// them), as go-oidc does, so one exotic key does not disable login.
func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch keys: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch keys: %s answered %s", k.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch keys: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("fetch keys: key set is larger than %d bytes", maxJWKSBytes)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("fetch keys: decode key set: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, r := range raw.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(r); err != nil || !key.Valid() || !key.IsPublic() {
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("fetch keys: the key set holds no usable public key")
	}
	return keys, nil
}
