package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
)

// testCA is a certificate authority made in the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// issue makes a client certificate with the given SANs, valid from nb to na.
func (ca *testCA) issue(t *testing.T, cn string, uris []string, dns []string, nb, na time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0xbeef),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:     dns,
	}
	for _, u := range uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// clientWith is the env's client presenting cert.
func (e *authEnv) clientWith(cert tls.Certificate) *http.Client {
	tr := e.client.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	return &http.Client{Transport: tr}
}

func TestMTLS(t *testing.T) {
	t.Parallel()
	ca, other := newTestCA(t, "client CA"), newTestCA(t, "other CA")
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	e := newAuthEnv(t, nil, func(s *httptest.Server) {
		s.TLS = &tls.Config{ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	})
	now := time.Now()
	valid := func(c *testCA, uris, dns []string) tls.Certificate {
		return c.issue(t, "ci-runner", uris, dns, now.Add(-time.Minute), now.Add(time.Hour))
	}
	ci := e.clientWith(valid(ca, []string{"spiffe://acme/ci"}, []string{"ci.acme.test"}))

	// Identity = "uri:" and the first URI SAN; the claims reach the policy.
	res, err := e.try(ci, "GET", api.RouteTokenLookupSelf.Path, "", "")
	if err != nil {
		t.Fatal(err)
	}
	var info secret.TokenInfo
	if err := json.Unmarshal(res.body, &info); err != nil || res.status != 200 {
		t.Fatalf("lookup-self: %d %s", res.status, res.body)
	}
	if info.Identity != "uri:spiffe://acme/ci" || info.Claims["san_uri"] != "spiffe://acme/ci" || info.Claims["san_dns"] != "ci.acme.test" ||
		info.Claims["subject_cn"] != "ci-runner" || info.Claims["serial"] != "beef" {
		t.Errorf("mTLS identity %q claims %v", info.Identity, info.Claims)
	}
	if res, err := e.try(ci, "GET", "/v1/secrets/prod/app/key", "", ""); err != nil || res.status != 200 {
		t.Errorf("mTLS read prod/app/key: %v %d %s", err, res.status, res.body)
	}
	if res, err := e.try(ci, "GET", "/v1/secrets/prod/db/password", "", ""); err != nil || res.status != 404 {
		t.Errorf("mTLS read prod/db/password: %v %d, want 404", err, res.status)
	}
	// A bearer token wins over the certificate.
	if res, err := e.try(ci, "GET", "/v1/auth/tokens", e.root, ""); err != nil || res.status != 200 {
		t.Errorf("bearer with a client cert: %v %d %s", err, res.status, res.body)
	}
	if res, err := e.try(ci, "GET", "/v1/auth/tokens", "pmt_bogus", ""); err != nil || res.status != 401 {
		t.Errorf("bad bearer with a client cert: %v %d, want 401 (no fallback)", err, res.status)
	}

	// DNS SAN only: identity is "dns:" and the DNS name; the policy does
	// not allow it.
	dnsOnly := e.clientWith(valid(ca, nil, []string{"batch.acme.test"}))
	res, err = e.try(dnsOnly, "GET", api.RouteTokenLookupSelf.Path, "", "")
	if err != nil || res.status != 200 {
		t.Fatalf("dns-only lookup-self: %v %d %s", err, res.status, res.body)
	}
	if err := json.Unmarshal(res.body, &info); err != nil || info.Identity != "dns:batch.acme.test" {
		t.Errorf("dns-only identity %q", info.Identity)
	}
	if res, _ := e.try(dnsOnly, "GET", "/v1/secrets/prod/app/key", "", ""); res.status != 404 {
		t.Errorf("dns-only read: %d, want 404", res.status)
	}

	// A DNS SAN spelled like the URI SAN is another identity: the policy
	// granting "uri:spiffe://acme/ci" does not grant it.
	spoof := e.clientWith(valid(ca, nil, []string{"spiffe://acme/ci"}))
	res, err = e.try(spoof, "GET", api.RouteTokenLookupSelf.Path, "", "")
	if err != nil || res.status != 200 {
		t.Fatalf("dns-spoof lookup-self: %v %d %s", err, res.status, res.body)
	}
	info = secret.TokenInfo{}
	if err := json.Unmarshal(res.body, &info); err != nil || info.Identity != "dns:spiffe://acme/ci" || info.Claims["san_uri"] != "" {
		t.Errorf("DNS SAN spiffe://acme/ci: identity %q claims %v", info.Identity, info.Claims)
	}
	if res, _ := e.try(spoof, "GET", "/v1/secrets/prod/app/key", "", ""); res.status != 404 {
		t.Errorf("DNS SAN spelled as the URI SAN read prod/app/key: %d, want 404", res.status)
	}

	// No SAN at all: 401.
	if res, err := e.try(e.clientWith(valid(ca, nil, nil)), "GET", api.RouteTokenLookupSelf.Path, "", ""); err != nil || res.status != 401 {
		t.Errorf("cert without SANs: %v %d, want 401", err, res.status)
	}
	// No certificate, no token: 401; probes still work.
	if res := e.do(t, "GET", api.RouteTokenLookupSelf.Path, "", ""); res.status != 401 {
		t.Errorf("no credentials: %d, want 401", res.status)
	}
	if res := e.do(t, "GET", api.RouteHealth.Path, "", ""); res.status != 200 {
		t.Errorf("health without a cert: %d", res.status)
	}

	// A Go client withholds a certificate the server's CA list does not
	// name: the request arrives without credentials, 401.
	otherCert := valid(other, []string{"spiffe://acme/ci"}, nil)
	if res, err := e.try(e.clientWith(otherCert), "GET", "/v1/secrets/prod/app/key", "", ""); err != nil || res.status != 401 {
		t.Errorf("other CA: %v %d, want 401", err, res.status)
	}
	// Sent anyway, it fails the handshake, as does an expired certificate
	// of the right CA: neither reaches the handler.
	forced := e.clientWith(otherCert)
	forced.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &otherCert, nil
	}
	expired := e.clientWith(ca.issue(t, "ci-runner", []string{"spiffe://acme/ci"}, nil, now.Add(-2*time.Hour), now.Add(-time.Hour)))
	for name, c := range map[string]*http.Client{"other CA, forced": forced, "expired": expired} {
		if res, err := e.try(c, "GET", "/v1/secrets/prod/app/key", "", ""); err == nil {
			t.Errorf("%s: %d %s, want a handshake failure", name, res.status, res.body)
		}
	}
}

// TestMTLSOff: without ClientCerts the handler ignores a verified
// certificate: enabling TLS client auth elsewhere grants nothing.
func TestMTLSOff(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "client CA")
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	e := newAuthEnv(t, nil, nil)
	// Restart the server with client auth at the TLS layer only.
	e.srv.Close()
	srv := httptest.NewUnstartedServer(e.srv.Config.Handler)
	srv.TLS = &tls.Config{ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.Config.ErrorLog = e.srv.Config.ErrorLog
	srv.StartTLS()
	t.Cleanup(srv.Close)
	e.url, e.client = srv.URL, srv.Client()
	c := e.clientWith(ca.issue(t, "x", []string{"spiffe://acme/ci"}, nil, time.Now().Add(-time.Minute), time.Now().Add(time.Hour)))
	if res, err := e.try(c, "GET", "/v1/secrets/prod/app/key", "", ""); err != nil || res.status != 401 {
		t.Errorf("cert with ClientCerts off: %v %d, want 401", err, res.status)
	}
}

// TestRunClientCA: Run with a client CA file authenticates a client
// certificate end to end; a file without certificates is refused.
func TestRunClientCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t, "client CA")
	caFile := filepath.Join(dir, "client-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := runServer(t, server.Config{Dev: true, DevDir: filepath.Join(dir, "dev"), Out: io.Discard, ClientCAFile: caFile,
		Store: core.Options{Actor: "tester", AuditSync: audit.SyncWrite}})
	serverCA, err := os.ReadFile(s.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(serverCA)
	cert := ca.issue(t, "ci", []string{"spiffe://acme/ci"}, nil, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}}}
	e := &authEnv{url: s.URL}
	res, err := e.try(c, "GET", api.RouteTokenLookupSelf.Path, "", "")
	if err != nil || res.status != 200 || !strings.Contains(string(res.body), `"identity":"uri:spiffe://acme/ci"`) {
		t.Errorf("lookup-self with a client cert: %v %d %s", err, res.status, res.body)
	}

	bad := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(bad, []byte("no certificates here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = server.Run(context.Background(), server.Config{Dev: true, Addr: "127.0.0.1:0", Out: io.Discard, ClientCAFile: bad})
	if !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("Run with an empty client CA file: %v, want ErrInvalidArgument", err)
	}
}
