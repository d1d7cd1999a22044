package server_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
)

func TestLoadFileTokenRetention(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fc, err := server.LoadFile(write("ok.yaml", "token_retention: 36h\n"))
	if err != nil || time.Duration(fc.TokenRetention) != 36*time.Hour {
		t.Fatalf("token_retention 36h: %v, %v", time.Duration(fc.TokenRetention), err)
	}
	for name, text := range map[string]string{
		"not a duration": "token_retention: soon\n",
		"a list":         "token_retention: [1h]\n",
		"misspelt":       "token_retension: 1h\n",
	} {
		if _, err := server.LoadFile(write(name+".yaml", text)); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("%s: %v, want invalid argument", name, err)
		}
	}
}

func TestLoadFileEtcdStorage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	load := func(name, text string) (server.FileConfig, error) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return server.LoadFile(p)
	}
	fc, err := load("ok.yaml", "storage: etcd\nserver_id: pm-1\netcd: {endpoints: [http://127.0.0.1:2379], prefix: passman/prod}\n")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := fc.EtcdConfig()
	if err != nil || cfg == nil || cfg.Prefix != "passman/prod/" || cfg.Endpoints[0] != "http://127.0.0.1:2379" || cfg.TLS != nil || fc.ServerID != "pm-1" {
		t.Fatalf("etcd config = %+v, %v", cfg, err)
	}
	if len(cfg.ReadCache) == 0 {
		t.Fatal("the read cache is off by default")
	}
	if fc, err := load("nocache.yaml", "storage: etcd\netcd: {endpoints: [http://h:1], read_cache: false}\n"); err != nil {
		t.Fatal(err)
	} else if cfg, err := fc.EtcdConfig(); err != nil || len(cfg.ReadCache) != 0 {
		t.Fatalf("read_cache: false: %+v, %v", cfg, err)
	}
	if fc, err := load("none.yaml", "listen: :8200\n"); err != nil {
		t.Fatal(err)
	} else if cfg, err := fc.EtcdConfig(); cfg != nil || err != nil {
		t.Fatalf("no storage: %+v, %v", cfg, err)
	}
	for name, text := range map[string]string{
		"section without storage": "etcd: {endpoints: [http://h:1]}\n",
		"storage without section": "storage: etcd\n",
		"no endpoints":            "storage: etcd\netcd: {prefix: p}\n",
		"unknown storage":         "storage: postgres\n",
		"unreadable ca":           "storage: etcd\netcd: {endpoints: [https://h:1], ca_file: /nonexistent}\n",
		"cert without key":        "storage: etcd\netcd: {endpoints: [https://h:1], cert_file: c.pem}\n",
	} {
		fc, err := load(name+".yaml", text)
		if err == nil {
			_, err = fc.EtcdConfig()
		}
		if !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("%s: %v, want invalid argument", name, err)
		}
	}
	if _, err := load("misspelt.yaml", "storage: etcd\netcd: {endpoint: [http://h:1]}\n"); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("misspelt etcd key: %v", err)
	}
}
