package etcdtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"
)

// kv puts or gets a key through etcd's JSON gateway (the tests of this
// package do not need the client library).
func kv(ctx context.Context, m *Member, op string, key, value string) (string, error) {
	body := map[string]string{"key": base64.StdEncoding.EncodeToString([]byte(key))}
	if op == "put" {
		body["value"] = base64.StdEncoding.EncodeToString([]byte(value))
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.ClientURL+"/v3/kv/"+op, bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: HTTP %d", op, resp.StatusCode)
	}
	var r struct {
		Kvs []struct {
			Value string `json:"value"`
		} `json:"kvs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return "", err
	}
	if len(r.Kvs) == 0 {
		return "", nil
	}
	v, err := base64.StdEncoding.DecodeString(r.Kvs[0].Value)
	return string(v), err
}

func TestKillLeaderAndRestart(t *testing.T) {
	c := New(t, Options{Members: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := kv(ctx, c.Member(0), "put", "k", "before"); err != nil {
		t.Fatal(err)
	}
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(leader); err != nil {
		t.Fatal(err)
	}
	if c.Running(leader) {
		t.Fatal("killed member still running")
	}
	next, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next == leader {
		t.Fatalf("leader %d killed but still reported as leader", leader)
	}
	other := (leader + 1) % 3
	if _, err := kv(ctx, c.Member(other), "put", "k", "after"); err != nil {
		t.Fatalf("write with one member down: %v", err)
	}
	if err := c.Restart(ctx, leader); err != nil {
		t.Fatal(err)
	}
	// The restarted member caught up with the write it missed.
	if v, err := kv(ctx, c.Member(leader), "range", "k", ""); err != nil || v != "after" {
		t.Fatalf("read on restarted member = %q, %v; want after", v, err)
	}
	if err := c.Restart(ctx, leader); err == nil {
		t.Fatal("Restart of a running member succeeded")
	}
}

func TestSharedAndStop(t *testing.T) {
	a := Shared(t)
	b := Shared(t)
	if a != b {
		t.Fatal("Shared started a second cluster")
	}
	if len(a.Endpoints()) != 3 {
		t.Fatalf("endpoints = %v", a.Endpoints())
	}
	c := New(t, Options{Members: 1})
	dir := c.dir
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("cluster directory left behind: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := health(ctx, c.Member(0)); err == nil {
		t.Fatal("stopped member still answers")
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop = %v", err)
	}
}

func TestPrefixUnique(t *testing.T) {
	a, b := Prefix("x/y"), Prefix("x/y")
	if a == b {
		t.Fatalf("Prefix repeated %q", a)
	}
}
