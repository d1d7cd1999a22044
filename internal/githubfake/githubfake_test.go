package githubfake

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
	"golang.org/x/crypto/nacl/box"
)

const token = "ghp_fake_token"

func client(t *testing.T, s *Server, tok string) *github.Client {
	t.Helper()
	c, err := github.NewClient(nil).WithAuthToken(tok).WithEnterpriseURLs(s.URL, s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seal encrypts v to pk as a GitHub client must.
func seal(t *testing.T, pk *github.PublicKey, v string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(pk.GetKey())
	if err != nil || len(raw) != 32 {
		t.Fatalf("public key %q: %v", pk.GetKey(), err)
	}
	var k [32]byte
	copy(k[:], raw)
	ct, err := box.SealAnonymous(nil, []byte(v), &k, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(ct)
}

func status(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

// raw sends a request by hand, for what go-github would not send.
func raw(t *testing.T, method, url, auth string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, url, b, err)
		}
	}
	return resp.StatusCode, out
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	s := New(token)
	defer s.Close()
	s.AddRepo("acme", "app")
	url := s.URL + "/repos/acme/app/actions/secrets/public-key"
	for _, tc := range []struct {
		auth string
		code int
		msg  string
	}{
		{"", 401, "Requires authentication"},
		{"Bearer wrong", 401, "Bad credentials"},
		{"token " + token, 401, "Bad credentials"},
		{"Bearer " + token, 200, ""},
	} {
		code, body := raw(t, "GET", url, tc.auth, nil)
		if code != tc.code || tc.msg != "" && body["message"] != tc.msg {
			t.Errorf("auth %q: %d %v, want %d %q", tc.auth, code, body, tc.code, tc.msg)
		}
	}
	if _, _, err := client(t, s, "nope").Actions.GetRepoPublicKey(context.Background(), "acme", "app"); status(err) != 401 {
		t.Errorf("go-github with a wrong token: %v", err)
	}
}

func TestRepoSecretRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := New(token)
	defer s.Close()
	s.AddRepo("acme", "app")
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	s.SetNow(func() time.Time { return created })
	c := client(t, s, token)

	pk, _, err := c.Actions.GetRepoPublicKey(ctx, "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Actions.CreateOrUpdateRepoSecret(ctx, "acme", "app", &github.EncryptedSecret{Name: "db_password", KeyID: pk.GetKeyID(), EncryptedValue: seal(t, pk, "one")})
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create: %v %v", resp, err)
	}
	updated := created.Add(time.Minute)
	s.SetNow(func() time.Time { return updated })
	resp, err = c.Actions.CreateOrUpdateRepoSecret(ctx, "acme", "app", &github.EncryptedSecret{Name: "DB_PASSWORD", KeyID: pk.GetKeyID(), EncryptedValue: seal(t, pk, "two")})
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("update: %v %v", resp, err)
	}
	got, _, err := c.Actions.GetRepoSecret(ctx, "acme", "app", "Db_Password")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "DB_PASSWORD" || !got.CreatedAt.Time.Equal(created) || !got.UpdatedAt.Time.Equal(updated) {
		t.Errorf("GET: %+v", got)
	}
	st, err := s.RepoSecret("acme", "app", "DB_PASSWORD")
	if err != nil || string(st.Value) != "two" || st.KeyID != pk.GetKeyID() {
		t.Errorf("stored: %+v %v", st, err)
	}
	if _, _, err := c.Actions.GetRepoSecret(ctx, "acme", "app", "OTHER"); status(err) != 404 {
		t.Errorf("missing secret: %v", err)
	}
	if _, _, err := c.Actions.GetRepoPublicKey(ctx, "acme", "nope"); status(err) != 404 {
		t.Errorf("missing repo: %v", err)
	}
	// Served at the root as well as under /api/v3.
	if code, body := raw(t, "GET", s.URL+"/repos/acme/app/actions/secrets/DB_PASSWORD", "Bearer "+token, nil); code != 200 || body["name"] != "DB_PASSWORD" || body["value"] != nil || body["encrypted_value"] != nil {
		t.Errorf("GET at the root: %d %v", code, body)
	}
}

func TestPutValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := New(token)
	defer s.Close()
	s.AddRepo("acme", "app")
	pk, _, err := client(t, s, token).Actions.GetRepoPublicKey(ctx, "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _, _ := box.GenerateKey(rand.Reader)
	wrongKey := &github.PublicKey{KeyID: pk.KeyID, Key: github.String(base64.StdEncoding.EncodeToString(otherPub[:]))}
	good := seal(t, pk, "v")
	base := s.URL + "/api/v3/repos/acme/app/actions/secrets/"
	for _, tc := range []struct {
		name, secret string
		body         any
		code         int
	}{
		{"ok", "OK", map[string]string{"encrypted_value": good, "key_id": pk.GetKeyID()}, 201},
		{"not base64", "S", map[string]string{"encrypted_value": "not base64!", "key_id": pk.GetKeyID()}, 422},
		{"unpadded base64", "S", map[string]string{"encrypted_value": strings.TrimRight(good, "="), "key_id": pk.GetKeyID()}, 422},
		{"stale key id", "S", map[string]string{"encrypted_value": good, "key_id": "1"}, 422},
		{"sealed to another key", "S", map[string]string{"encrypted_value": seal(t, wrongKey, "v"), "key_id": pk.GetKeyID()}, 422},
		{"no value", "S", map[string]string{"key_id": pk.GetKeyID()}, 422},
		{"no key id", "S", map[string]string{"encrypted_value": good}, 422},
		{"too large", "S", map[string]string{"encrypted_value": seal(t, pk, strings.Repeat("x", MaxValue+1)), "key_id": pk.GetKeyID()}, 422},
		{"reserved name", "GITHUB_TOKEN", map[string]string{"encrypted_value": good, "key_id": pk.GetKeyID()}, 422},
		{"digit first", "1X", map[string]string{"encrypted_value": good, "key_id": pk.GetKeyID()}, 422},
		{"bad character", "A-B", map[string]string{"encrypted_value": good, "key_id": pk.GetKeyID()}, 422},
		{"not JSON", "S", "{", 400},
	} {
		code, body := raw(t, "PUT", base+tc.secret, "Bearer "+token, tc.body)
		if code != tc.code {
			t.Errorf("%s: %d %v, want %d", tc.name, code, body, tc.code)
		}
		if code == 422 && body["message"] != "Validation Failed" {
			t.Errorf("%s: body %v", tc.name, body)
		}
	}
	if _, err := s.RepoSecret("acme", "app", "S"); err == nil {
		t.Error("a rejected PUT stored a secret")
	}
	if code, _ := raw(t, "PUT", base+"public-key", "Bearer "+token, map[string]string{}); code != 404 {
		t.Errorf("PUT public-key: %d", code)
	}
}

func TestEnvironmentSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := New(token)
	defer s.Close()
	id := s.AddRepo("acme", "app")
	s.AddEnvironment("acme", "app", "prod eu")
	c := client(t, s, token)

	repo, _, err := c.Repositories.Get(ctx, "acme", "app")
	if err != nil || repo.GetID() != id {
		t.Fatalf("repo lookup: %v %v", repo, err)
	}
	env := "prod%20eu" // go-github puts the name into the path as given
	pk, _, err := c.Actions.GetEnvPublicKey(ctx, int(id), env)
	if err != nil {
		t.Fatal(err)
	}
	repoKey, _, _ := c.Actions.GetRepoPublicKey(ctx, "acme", "app")
	if repoKey.GetKeyID() == pk.GetKeyID() {
		t.Error("environment and repository share a key")
	}
	if _, err := c.Actions.CreateOrUpdateEnvSecret(ctx, int(id), env, &github.EncryptedSecret{Name: "K", KeyID: repoKey.GetKeyID(), EncryptedValue: seal(t, repoKey, "v")}); status(err) != 422 {
		t.Errorf("PUT with the repository's key: %v", err)
	}
	if _, err := c.Actions.CreateOrUpdateEnvSecret(ctx, int(id), env, &github.EncryptedSecret{Name: "K", KeyID: pk.GetKeyID(), EncryptedValue: seal(t, pk, "env value")}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := c.Actions.GetEnvSecret(ctx, int(id), env, "K"); err != nil || got.Name != "K" {
		t.Errorf("GET: %v %v", got, err)
	}
	if st, err := s.EnvSecret("acme", "app", "PROD EU", "k"); err != nil || string(st.Value) != "env value" {
		t.Errorf("stored: %+v %v", st, err)
	}
	if _, err := s.RepoSecret("acme", "app", "K"); err == nil {
		t.Error("environment secret visible as a repository secret")
	}
	if _, _, err := c.Actions.GetEnvPublicKey(ctx, int(id), "staging"); status(err) != 404 {
		t.Errorf("unknown environment: %v", err)
	}
	if _, _, err := c.Actions.GetEnvPublicKey(ctx, int(id)+1, env); status(err) != 404 {
		t.Errorf("unknown repository id: %v", err)
	}
}

func TestOrgSecretVisibility(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := New(token)
	defer s.Close()
	s.AddOrg("acme")
	c := client(t, s, token)
	pk, _, err := c.Actions.GetOrgPublicKey(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	put := func(vis string, ids []int64) error {
		_, err := c.Actions.CreateOrUpdateOrgSecret(ctx, "acme", &github.EncryptedSecret{Name: "K", KeyID: pk.GetKeyID(), EncryptedValue: seal(t, pk, "v"), Visibility: vis, SelectedRepositoryIDs: ids})
		return err
	}
	if err := put("", nil); status(err) != 422 {
		t.Errorf("no visibility: %v", err)
	}
	if err := put("public", nil); status(err) != 422 {
		t.Errorf("bad visibility: %v", err)
	}
	if err := put("all", []int64{1}); status(err) != 422 {
		t.Errorf("ids without selected: %v", err)
	}
	if err := put("selected", []int64{7, 8}); err != nil {
		t.Fatal(err)
	}
	if err := put("selected", nil); err != nil {
		t.Fatal(err)
	}
	st, err := s.OrgSecret("acme", "K")
	if err != nil || st.Visibility != "selected" || len(st.SelectedRepositoryIDs) != 2 {
		t.Errorf("omitting ids must keep the selection: %+v %v", st, err)
	}
	got, _, err := c.Actions.GetOrgSecret(ctx, "acme", "K")
	if err != nil || got.Visibility != "selected" || !strings.HasSuffix(got.SelectedRepositoriesURL, "/orgs/acme/actions/secrets/K/repositories") {
		t.Errorf("GET: %+v %v", got, err)
	}
	if err := put("private", nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.OrgSecret("acme", "K"); st.Visibility != "private" || st.SelectedRepositoryIDs != nil {
		t.Errorf("after private: %+v", st)
	}
	if _, _, err := c.Actions.GetOrgPublicKey(ctx, "other"); status(err) != 404 {
		t.Errorf("unknown org: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := New(token)
	defer s.Close()
	s.AddRepo("acme", "app")
	c := client(t, s, token)
	put := func(v string) (*github.PublicKey, error) {
		pk, _, err := c.Actions.GetRepoPublicKey(ctx, "acme", "app")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Actions.CreateOrUpdateRepoSecret(ctx, "acme", "app", &github.EncryptedSecret{Name: "K", KeyID: pk.GetKeyID(), EncryptedValue: seal(t, pk, v)})
		return pk, err
	}
	first, err := put("one")
	if err != nil {
		t.Fatal(err)
	}
	s.RotateKeyAfterFetches(1)
	if _, err := put("two"); status(err) != 422 {
		t.Fatalf("put after a rotation: %v", err)
	}
	if st, _ := s.RepoSecret("acme", "app", "K"); string(st.Value) != "one" {
		t.Errorf("a rejected put changed the value: %q", st.Value)
	}
	second, err := put("two")
	if err != nil || second.GetKeyID() == first.GetKeyID() {
		t.Fatalf("put with the new key: %v (key %s → %s)", err, first.GetKeyID(), second.GetKeyID())
	}
	s.RotateKeys()
	// A value stored under a retired key still decrypts for the test.
	if st, err := s.RepoSecret("acme", "app", "K"); err != nil || string(st.Value) != "two" || st.KeyID != second.GetKeyID() {
		t.Errorf("after RotateKeys: %+v %v", st, err)
	}
	reqs := s.Requests()
	if len(reqs) != 6 || reqs[0] != "GET /repos/acme/app/actions/secrets/public-key" || reqs[1] != "PUT /repos/acme/app/actions/secrets/K" {
		t.Errorf("requests: %q", reqs)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	s := New(token)
	defer s.Close()
	s.AddRepo("acme", "app")
	c := client(t, s, token)
	done := make(chan error)
	for i := range 8 {
		go func() {
			pk, _, err := c.Actions.GetRepoPublicKey(context.Background(), "acme", "app")
			if err == nil {
				_, err = c.Actions.CreateOrUpdateRepoSecret(context.Background(), "acme", "app", &github.EncryptedSecret{Name: "K" + strconv.Itoa(i), KeyID: pk.GetKeyID(), EncryptedValue: seal(t, pk, "v")})
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
