package server

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/passman-dev/passman/secret"
)

// TestClientCertIdentity: the identity names its SAN type, so no spelling
// of one type's SAN can pose as another's.
func TestClientCertIdentity(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	spiffe, _ := url.Parse("spiffe://acme/ci")
	cert := func(uris []*url.URL, dns, emails []string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(0xbeef), Subject: pkix.Name{CommonName: "uri:spiffe://acme/ci"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			URIs: uris, DNSNames: dns, EmailAddresses: emails,
		}
	}
	cases := []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"uri wins", cert([]*url.URL{spiffe}, []string{"ci.acme.test"}, []string{"ci@acme.test"}), "uri:spiffe://acme/ci"},
		{"dns", cert(nil, []string{"ci.acme.test"}, []string{"ci@acme.test"}), "dns:ci.acme.test"},
		{"dns spelled as the uri", cert(nil, []string{"spiffe://acme/ci"}, nil), "dns:spiffe://acme/ci"},
		{"email", cert(nil, nil, []string{"spiffe://acme/ci"}), "email:spiffe://acme/ci"},
	}
	for _, c := range cases {
		info, err := clientCertInfo(c.cert, now)
		if err != nil || info.Identity != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, info.Identity, err, c.want)
		}
	}
	// The CN alone (here spelled as an identity) is no identity.
	if info, err := clientCertInfo(cert(nil, nil, nil), now); !errors.Is(err, secret.ErrUnauthenticated) {
		t.Errorf("no SAN: %q, %v; want unauthenticated", info.Identity, err)
	}
	info, _ := clientCertInfo(cert(nil, nil, []string{"ci@acme.test"}), now)
	if info.Claims[ClaimSANEmail] != "ci@acme.test" || info.Claims[ClaimSANDNS] != "" {
		t.Errorf("email claims %v", info.Claims)
	}
}
