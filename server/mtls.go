package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// Claims of a client-certificate subject (input.subject.claims), the SANs
// as the certificate has them, without the identity's type prefix.
const (
	ClaimSANURI    = "san_uri"    // the first URI SAN
	ClaimSANDNS    = "san_dns"    // the first DNS SAN
	ClaimSANEmail  = "san_email"  // the first email SAN
	ClaimSubjectCN = "subject_cn" // the subject's common name
	ClaimSerial    = "serial"     // the serial number, lowercase hex
)

// Prefixes of a client-certificate identity, by the SAN type it came
// from. Without them a DNS SAN spelled "spiffe://acme/ci" (a CA checks
// what it signs less than a policy author assumes) would be the same
// identity as that URI SAN.
const (
	IdentityURI   = "uri:"
	IdentityDNS   = "dns:"
	IdentityEmail = "email:"
)

// loadClientCAs reads the PEM bundle of CAs that sign client certificates.
func loadClientCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: read client CA file: %v", secret.ErrInvalidArgument, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%w: client CA file %s holds no PEM certificate", secret.ErrInvalidArgument, file)
	}
	return pool, nil
}

// withClientCAs makes tc ask for a client certificate and verify any that
// is given against pool. "If given": bearer-token clients, probes and the
// OIDC login keep working without one. A certificate that fails
// verification (unknown CA, expired, not for client auth) fails the
// handshake.
func withClientCAs(tc *tls.Config, pool *x509.CertPool) {
	tc.ClientCAs = pool
	tc.ClientAuth = tls.VerifyClientCertIfGiven
}

// clientCertInfo is the identity of a verified client certificate: its
// first URI SAN (a SPIFFE id, say) as "uri:<uri>", else its first DNS SAN
// as "dns:<name>", else its first email SAN as "email:<address>". The
// subject CN is not used as the identity: it is free text any CA may fill
// in, and SANs are what certificates name identities by. A certificate
// with none of them is refused.
func clientCertInfo(cert *x509.Certificate, now time.Time) (secret.TokenInfo, error) {
	// The handshake checked validity, but a keep-alive connection may
	// outlive the certificate.
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return secret.TokenInfo{}, fmt.Errorf("%w: client certificate is not valid now", secret.ErrUnauthenticated)
	}
	claims := map[string]string{
		ClaimKind:   policy.KindMTLS,
		ClaimSerial: cert.SerialNumber.Text(16),
	}
	if cert.Subject.CommonName != "" {
		claims[ClaimSubjectCN] = cert.Subject.CommonName
	}
	var id string
	if len(cert.EmailAddresses) > 0 {
		claims[ClaimSANEmail] = cert.EmailAddresses[0]
		id = IdentityEmail + cert.EmailAddresses[0]
	}
	if len(cert.DNSNames) > 0 {
		claims[ClaimSANDNS] = cert.DNSNames[0]
		id = IdentityDNS + cert.DNSNames[0]
	}
	if len(cert.URIs) > 0 {
		u := cert.URIs[0].String()
		claims[ClaimSANURI] = u
		id = IdentityURI + u
	}
	if id == "" {
		return secret.TokenInfo{}, fmt.Errorf("%w: client certificate has no URI, DNS or email subject alternative name", secret.ErrUnauthenticated)
	}
	return secret.TokenInfo{Identity: id, Claims: claims}, nil
}
