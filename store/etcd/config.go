package etcd

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/passman-dev/passman/secret"
)

// TLSFiles builds the client TLS configuration from PEM files: caFile
// verifies the members' certificates (empty: the system's roots), certFile
// and keyFile, both or neither, are this client's certificate for etcd's
// --client-cert-auth.
func TLSFiles(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: etcd CA: %v", secret.ErrInvalidArgument, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: etcd CA %s holds no PEM certificate", secret.ErrInvalidArgument, caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("%w: etcd client certificate and key go together", secret.ErrInvalidArgument)
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			// Not the error's text: it may quote the key file's content.
			return nil, fmt.Errorf("%w: etcd client certificate %s or its key does not load", secret.ErrInvalidArgument, certFile)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// ParseURL reads a store location of the form
//
//	etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?tls=1&cacert=FILE&cert=FILE&key=FILE]
//
// as a Config: the members to dial (https when tls=1 or any TLS file is
// given, http otherwise) and the store's key prefix (PREFIX with a
// trailing slash; "passman/" when empty). Credentials never go in the URL:
// it is shown in logs and listings.
func ParseURL(s string) (Config, error) {
	var cfg Config
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "etcd" {
		return cfg, fmt.Errorf("%w: want etcd://HOST:PORT[,HOST:PORT...]/PREFIX", secret.ErrInvalidArgument)
	}
	if u.User != nil {
		return cfg, fmt.Errorf("%w: etcd URL: no credentials in the URL", secret.ErrInvalidArgument)
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "tls", "cacert", "cert", "key":
		default:
			return cfg, fmt.Errorf("%w: etcd URL: unknown parameter %q", secret.ErrInvalidArgument, k)
		}
	}
	ca, cert, key := q.Get("cacert"), q.Get("cert"), q.Get("key")
	useTLS := q.Get("tls") == "1" || ca != "" || cert != ""
	scheme := "http://"
	if useTLS {
		scheme = "https://"
		if cfg.TLS, err = TLSFiles(ca, cert, key); err != nil {
			return cfg, err
		}
	}
	if u.Host == "" {
		return cfg, fmt.Errorf("%w: etcd URL names no member", secret.ErrInvalidArgument)
	}
	for _, h := range strings.Split(u.Host, ",") {
		if h == "" || strings.ContainsAny(h, "/?#@") {
			return cfg, fmt.Errorf("%w: etcd URL: bad member %q", secret.ErrInvalidArgument, h)
		}
		cfg.Endpoints = append(cfg.Endpoints, scheme+h)
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		cfg.Prefix = p + "/"
	}
	return cfg, nil
}
