// Package oidctest is a local OpenID Connect issuer for tests: an
// httptest TLS server with a discovery document and a JWKS endpoint, its
// own RSA and EC signing keys, and helpers that mint ID tokens with chosen
// claims, algorithm, key and lifetime — including the malformed and
// malicious ones (alg none, HS256 keyed with the public key, a key the
// JWKS does not publish) a verifier must refuse.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key ids the issuer publishes.
const (
	KidRSA = "rsa-1"
	KidEC  = "ec-1"
)

// Issuer is a running test issuer.
type Issuer struct {
	// URL is the issuer URL (the iss claim and discovery base).
	URL    string
	Server *httptest.Server
	rsaKey *rsa.PrivateKey
	ecKey  *ecdsa.PrivateKey

	mu        sync.Mutex
	jwksFetch int
	extra     []jose.JSONWebKey // keys published later (Publish)
	rawJWKS   []byte            // served instead of the keys when set
}

// New starts an issuer; it stops when the test ends. Keys are generated
// per issuer, so two issuers never trust each other's tokens.
func New(t testing.TB) *Issuer {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{rsaKey: rk, ecKey: ek}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                iss.URL,
			"jwks_uri":                              iss.URL + "/.well-known/jwks",
			"subject_types_supported":               []string{"public"},
			"response_types_supported":              []string{"id_token"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("GET /.well-known/jwks", func(w http.ResponseWriter, _ *http.Request) {
		iss.mu.Lock()
		iss.jwksFetch++
		raw, extra := iss.rawJWKS, iss.extra
		iss.mu.Unlock()
		if raw != nil {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(raw)
			return
		}
		writeJSON(w, jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey{
			{Key: rk.Public(), KeyID: KidRSA, Algorithm: string(jose.RS256), Use: "sig"},
			{Key: ek.Public(), KeyID: KidEC, Algorithm: string(jose.ES256), Use: "sig"},
		}, extra...)})
	})
	iss.Server = httptest.NewTLSServer(mux)
	iss.URL = iss.Server.URL
	t.Cleanup(iss.Server.Close)
	return iss
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Client is an HTTP client that trusts the issuer's certificate.
func (i *Issuer) Client() *http.Client { return i.Server.Client() }

// RSAKey is the issuer's RSA signing key, to sign with an algorithm Sign
// does not offer.
func (i *Issuer) RSAKey() *rsa.PrivateKey { return i.rsaKey }

// JWKSFetches counts the JWKS requests served, to show key caching.
func (i *Issuer) JWKSFetches() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.jwksFetch
}

// Publish adds a new RSA key with the given kid to the JWKS, as an issuer
// rotating its keys does, and returns it to sign with (SignWith).
func (i *Issuer) Publish(t testing.TB, kid string) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.extra = append(i.extra, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"})
	return k
}

// ServeJWKS makes the JWKS endpoint answer body (a broken or hostile key
// set) instead of the keys; nil restores them.
func (i *Issuer) ServeJWKS(body []byte) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.rawJWKS = body
}

// GitHubClaims are the claims of a GitHub Actions ID token for the main
// branch of repo (owner/name), issued by i for audience aud at now, valid
// five minutes.
func (i *Issuer) GitHubClaims(repo, aud string, now time.Time) map[string]any {
	owner, _, _ := strings.Cut(repo, "/")
	return map[string]any{
		"iss":                 i.URL,
		"aud":                 aud,
		"sub":                 "repo:" + repo + ":ref:refs/heads/main",
		"repository":          repo,
		"repository_owner":    owner,
		"repository_id":       "123456",
		"repository_owner_id": "654321",
		"ref":                 "refs/heads/main",
		"ref_type":            "branch",
		"sha":                 "0123456789abcdef0123456789abcdef01234567",
		"actor":               "octocat",
		"event_name":          "push",
		"run_id":              "42",
		"workflow_ref":        repo + "/.github/workflows/deploy.yml@refs/heads/main",
		"job_workflow_ref":    repo + "/.github/workflows/deploy.yml@refs/heads/main",
		"runner_environment":  "github-hosted",
		"jti":                 "jti-" + fmt.Sprint(now.UnixNano()),
		"iat":                 now.Unix(),
		"nbf":                 now.Unix(),
		"exp":                 now.Add(5 * time.Minute).Unix(),
	}
}

// Alg selects how Sign signs.
type Alg string

// Signing modes.
const (
	RS256 Alg = "RS256" // the issuer's RSA key, kid KidRSA
	ES256 Alg = "ES256" // the issuer's EC key, kid KidEC
	// None is an unsigned token (alg "none", empty signature).
	None Alg = "none"
	// HS256Confusion is HMAC-SHA256 keyed with the PEM of the issuer's
	// public RSA key, kid KidRSA: the classic algorithm-confusion attack.
	HS256Confusion Alg = "HS256-confusion"
)

// Sign mints a token with claims signed by alg.
func (i *Issuer) Sign(t testing.TB, alg Alg, claims map[string]any) string {
	t.Helper()
	switch alg {
	case RS256:
		return i.SignWith(t, jose.RS256, i.rsaKey, KidRSA, claims)
	case ES256:
		return i.SignWith(t, jose.ES256, i.ecKey, KidEC, claims)
	case None:
		return rawJWT(t, map[string]any{"alg": "none", "typ": "JWT"}, claims, func([]byte) []byte { return nil })
	case HS256Confusion:
		der, err := x509.MarshalPKIXPublicKey(i.rsaKey.Public())
		if err != nil {
			t.Fatal(err)
		}
		secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		return rawJWT(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": KidRSA}, claims, func(in []byte) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write(in)
			return m.Sum(nil)
		})
	}
	t.Fatalf("oidctest: unknown alg %q", alg)
	return ""
}

// SignWith signs claims with any key and kid, e.g. a key the issuer does
// not publish (a forged signature) or an unknown kid.
func (i *Issuer) SignWith(t testing.TB, alg jose.SignatureAlgorithm, key crypto.Signer, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rawJWT assembles a compact JWT by hand, for tokens no honest signer
// would make.
func rawJWT(t testing.TB, header, claims map[string]any, sign func([]byte) []byte) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	return in + "." + enc.EncodeToString(sign([]byte(in)))
}

// With returns a copy of claims with the given changes; a nil value
// deletes the claim.
func With(claims map[string]any, kv ...any) map[string]any {
	out := maps.Clone(claims)
	for j := 0; j+1 < len(kv); j += 2 {
		k := kv[j].(string)
		if kv[j+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[j+1]
		}
	}
	return out
}
