// Package githubfake is an in-process emulation of the part of GitHub's
// REST API that manages GitHub Actions secrets, for tests: GitHub itself
// cannot be reached (or written to) from a test, so this server stands in
// for it. It is an emulation written from GitHub's REST documentation and
// the requests go-github v62 sends, not GitHub: where GitHub's behaviour
// is undocumented it makes a stated choice (below).
//
// Endpoints, served both at the root (as api.github.com) and under /api/v3
// (as GitHub Enterprise Server, which go-github's WithEnterpriseURLs uses):
//
//	GET /repos/{owner}/{repo}                                   (its id, for environment secrets)
//	GET /repos/{owner}/{repo}/actions/secrets/public-key
//	GET|PUT /repos/{owner}/{repo}/actions/secrets/{name}
//	GET /repositories/{repo_id}/environments/{env}/secrets/public-key
//	GET|PUT /repositories/{repo_id}/environments/{env}/secrets/{name}
//	GET /orgs/{org}/actions/secrets/public-key
//	GET|PUT /orgs/{org}/actions/secrets/{name}
//	GET|POST /repos/{owner}/{repo}/issues/{number}/comments      (comments.go)
//	PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}
//
// Behaviours emulated:
//   - Authentication: every request needs "Authorization: Bearer <token>"
//     with a token given to New; otherwise 401 ("Requires authentication"
//     or "Bad credentials"). GitHub also accepts the older "token <token>"
//     scheme; the emulation does not, since go-github sends Bearer.
//   - Every scope (repository, environment, organization) has its own NaCl
//     key pair and key_id. A PUT must carry the scope's current key_id and
//     an encrypted_value that is standard base64 of a sealed box
//     (libsodium crypto_box_seal) to that key; otherwise 422 "Validation
//     Failed". Whether GitHub decrypts on write is not documented; the
//     emulation does, so a value sealed to the wrong key fails here at once.
//   - Names are case-insensitive and stored upper case; a name that is
//     not [A-Za-z0-9_], starts with a digit or GITHUB_ is a 422. Values
//     over 48 KiB are a 422.
//   - PUT answers 201 when it created the secret and 204 when it updated
//     it. GET answers name, created_at and updated_at (whole seconds,
//     RFC 3339), and for an organization secret visibility and, when it is
//     "selected", selected_repositories_url; never the value.
//   - Organization PUTs must carry visibility (all, private or selected);
//     selected_repository_ids is accepted only with "selected", and
//     leaving it out keeps the secret's present selection.
//   - Unknown owners, repositories, environments, organizations, secrets
//     and routes are 404 with GitHub's error body.
//
// Not emulated: rate limits, pagination of secrets, listing and deleting secrets,
// token scopes or fine-grained permissions (every valid token may do
// everything, except that a token added read-only with AddToken may not
// write comments), Dependabot and Codespaces secrets.
//
// Tests read what was stored, decrypted with the scope's private key
// (box.OpenAnonymous), to check that a client sealed the right value; they
// can rotate keys, including between a client's fetch of the key and its
// PUT, and set the clock that stamps created_at and updated_at.
package githubfake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/nacl/box"
)

// MaxValue is GitHub's limit on a secret's value.
const MaxValue = 48 * 1024

// Secret is a stored secret as a test sees it: Value is the decrypted
// value, which GitHub's API never returns.
type Secret struct {
	Name                  string
	Value                 []byte
	KeyID                 string
	Visibility            string // organization secrets only
	SelectedRepositoryIDs []int64
	CreatedAt, UpdatedAt  time.Time
}

// Server is a running emulation. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's root; give it to go-github's WithEnterpriseURLs
	// (which appends /api/v3/) or use it as BaseURL directly.
	URL string

	srv *httptest.Server

	mu          sync.Mutex
	tokens      map[string]bool
	tokenInfo   map[string]tokenInfo
	now         func() time.Time
	nextID      int64
	repos       map[string]*repository // by lower-case owner/name
	reposByID   map[int64]*repository
	orgs        map[string]*scope // by lower-case login
	privateKeys map[string]*[32]byte
	publicKeys  map[string]*[32]byte
	rotateAfter int
	requests    []string
}

type repository struct {
	id          int64
	owner, name string
	scope       *scope
	envs        map[string]*scope // by lower-case name
	pulls       map[int]bool
	comments    []*Comment
}

type scope struct {
	kind    string // "repo", "env" or "org"
	keyID   string
	secrets map[string]*stored // by upper-case name
}

type stored struct {
	name                 string
	ciphertext           []byte
	keyID                string
	visibility           string
	selected             []int64
	createdAt, updatedAt time.Time
}

// New starts a server that accepts the given tokens. Close it when done.
func New(tokens ...string) *Server {
	s := &Server{
		tokens:      map[string]bool{},
		now:         time.Now,
		nextID:      1000,
		repos:       map[string]*repository{},
		reposByID:   map[int64]*repository{},
		orgs:        map[string]*scope{},
		privateKeys: map[string]*[32]byte{},
		publicKeys:  map[string]*[32]byte{},
	}
	for _, t := range tokens {
		s.tokens[t] = true
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// SetNow sets the clock that stamps created_at and updated_at (the Date
// header stays the real time, as net/http writes it).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// AddRepo creates owner/name and returns its id.
func (s *Server) AddRepo(owner, name string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	r := &repository{id: s.nextID, owner: owner, name: name, scope: s.newScope("repo"), envs: map[string]*scope{}}
	s.repos[strings.ToLower(owner+"/"+name)] = r
	s.reposByID[r.id] = r
	return r.id
}

// AddEnvironment creates a deployment environment in owner/repo, which
// must have been added.
func (s *Server) AddEnvironment(owner, repo, env string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(owner+"/"+repo)]
	if r == nil {
		panic("githubfake: AddEnvironment: unknown repository " + owner + "/" + repo)
	}
	r.envs[strings.ToLower(env)] = s.newScope("env")
}

// AddOrg creates an organization.
func (s *Server) AddOrg(org string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orgs[strings.ToLower(org)] = s.newScope("org")
}

// RotateKeys gives every scope a new key pair: PUTs with an old key_id
// fail from now on, and values stored under old keys still decrypt.
func (s *Server) RotateKeys() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.repos {
		s.rotate(r.scope)
		for _, e := range r.envs {
			s.rotate(e)
		}
	}
	for _, o := range s.orgs {
		s.rotate(o)
	}
}

// RotateKeyAfterFetches makes each of the next n public-key requests
// rotate that scope's key right after answering, so the client's PUT with
// the key it was given meets a 422: the race GitHub clients must handle.
func (s *Server) RotateKeyAfterFetches(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotateAfter = n
}

// Requests lists the requests served, as "METHOD /path" with the path
// unescaped and without an /api/v3 prefix.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// RepoSecret returns a repository secret, decrypted.
func (s *Server) RepoSecret(owner, repo, name string) (Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(owner+"/"+repo)]
	if r == nil {
		return Secret{}, fmt.Errorf("githubfake: no repository %s/%s", owner, repo)
	}
	return s.decrypt(r.scope, name)
}

// EnvSecret returns an environment secret, decrypted.
func (s *Server) EnvSecret(owner, repo, env, name string) (Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(owner+"/"+repo)]
	if r == nil || r.envs[strings.ToLower(env)] == nil {
		return Secret{}, fmt.Errorf("githubfake: no environment %q in %s/%s", env, owner, repo)
	}
	return s.decrypt(r.envs[strings.ToLower(env)], name)
}

// OrgSecret returns an organization secret, decrypted.
func (s *Server) OrgSecret(org, name string) (Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orgs[strings.ToLower(org)]
	if o == nil {
		return Secret{}, fmt.Errorf("githubfake: no organization %s", org)
	}
	return s.decrypt(o, name)
}

func (s *Server) decrypt(sc *scope, name string) (Secret, error) {
	st := sc.secrets[strings.ToUpper(name)]
	if st == nil {
		return Secret{}, fmt.Errorf("githubfake: no secret %s", name)
	}
	v, ok := box.OpenAnonymous(nil, st.ciphertext, s.publicKeys[st.keyID], s.privateKeys[st.keyID])
	if !ok {
		// PUT already checked this; a failure here is a bug in the fake.
		return Secret{}, fmt.Errorf("githubfake: secret %s does not decrypt", name)
	}
	return Secret{
		Name: st.name, Value: v, KeyID: st.keyID, Visibility: st.visibility,
		SelectedRepositoryIDs: append([]int64(nil), st.selected...),
		CreatedAt:             st.createdAt, UpdatedAt: st.updatedAt,
	}, nil
}

// newScope and rotate need s.mu held.
func (s *Server) newScope(kind string) *scope {
	sc := &scope{kind: kind, secrets: map[string]*stored{}}
	s.rotate(sc)
	return sc
}

func (s *Server) rotate(sc *scope) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		panic("githubfake: generate key: " + err.Error())
	}
	// GitHub's key ids are long decimal strings.
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic("githubfake: key id: " + err.Error())
	}
	sc.keyID = n.String()
	s.publicKeys[sc.keyID], s.privateKeys[sc.keyID] = pub, priv
}

// apiError writes GitHub's error body.
func apiError(w http.ResponseWriter, code int, msg string, errs ...map[string]string) {
	body := map[string]any{
		"message":           msg,
		"documentation_url": "https://docs.github.com/rest/actions/secrets",
		"status":            strconv.Itoa(code),
	}
	if len(errs) > 0 {
		body["errors"] = errs
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	escaped := strings.TrimPrefix(r.URL.EscapedPath(), "/api/v3")
	segs := strings.Split(strings.Trim(escaped, "/"), "/")
	for i, seg := range segs {
		u, err := url.PathUnescape(seg)
		if err != nil {
			apiError(w, http.StatusNotFound, "Not Found")
			return
		}
		segs[i] = u
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" /"+strings.Join(segs, "/"))

	auth := r.Header.Get("Authorization")
	if auth == "" {
		apiError(w, http.StatusUnauthorized, "Requires authentication")
		return
	}
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || !s.tokens[tok] {
		apiError(w, http.StatusUnauthorized, "Bad credentials")
		return
	}
	if len(segs) >= 5 && segs[0] == "repos" && segs[3] == "issues" {
		info, ok := s.tokenInfo[tok]
		if !ok {
			info = tokenInfo{login: "github-actions[bot]"}
		}
		s.serveIssues(w, r, segs, info)
		return
	}

	var (
		sc   *scope
		rest []string
	)
	switch {
	case len(segs) == 3 && segs[0] == "repos":
		rp := s.repos[strings.ToLower(segs[1]+"/"+segs[2])]
		if rp == nil || r.Method != http.MethodGet {
			apiError(w, http.StatusNotFound, "Not Found")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": rp.id, "name": rp.name, "full_name": rp.owner + "/" + rp.name,
			"owner": map[string]any{"login": rp.owner}, "private": true,
		})
		return
	case len(segs) == 6 && segs[0] == "repos" && segs[3] == "actions" && segs[4] == "secrets":
		if rp := s.repos[strings.ToLower(segs[1]+"/"+segs[2])]; rp != nil {
			sc = rp.scope
		}
		rest = segs[5:]
	case len(segs) == 6 && segs[0] == "repositories" && segs[2] == "environments" && segs[4] == "secrets":
		id, err := strconv.ParseInt(segs[1], 10, 64)
		if rp := s.reposByID[id]; err == nil && rp != nil {
			sc = rp.envs[strings.ToLower(segs[3])]
		}
		rest = segs[5:]
	case len(segs) == 5 && segs[0] == "orgs" && segs[2] == "actions" && segs[3] == "secrets":
		sc = s.orgs[strings.ToLower(segs[1])]
		rest = segs[4:]
	}
	if sc == nil {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	switch {
	case rest[0] == "public-key":
		if r.Method != http.MethodGet {
			apiError(w, http.StatusNotFound, "Not Found")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{
			"key_id": sc.keyID,
			"key":    base64.StdEncoding.EncodeToString(s.publicKeys[sc.keyID][:]),
		})
		if s.rotateAfter > 0 {
			s.rotateAfter--
			s.rotate(sc)
		}
	case r.Method == http.MethodGet:
		s.getSecret(w, r, sc, rest[0], segs)
	case r.Method == http.MethodPut:
		s.putSecret(w, r, sc, rest[0])
	default:
		apiError(w, http.StatusNotFound, "Not Found")
	}
}

func (s *Server) getSecret(w http.ResponseWriter, r *http.Request, sc *scope, name string, segs []string) {
	st := sc.secrets[strings.ToUpper(name)]
	if st == nil {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	body := map[string]any{
		"name":       st.name,
		"created_at": st.createdAt.Format(time.RFC3339),
		"updated_at": st.updatedAt.Format(time.RFC3339),
	}
	if sc.kind == "org" {
		body["visibility"] = st.visibility
		if st.visibility == "selected" {
			body["selected_repositories_url"] = fmt.Sprintf("http://%s/orgs/%s/actions/secrets/%s/repositories", r.Host, segs[1], st.name)
		}
	}
	writeJSON(w, http.StatusOK, body)
}

var (
	secretName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// The pattern GitHub's OpenAPI description gives encrypted_value.
	base64Pattern = regexp.MustCompile(`^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$`)
)

func invalid(w http.ResponseWriter, field, code string) {
	apiError(w, http.StatusUnprocessableEntity, "Validation Failed",
		map[string]string{"resource": "Secret", "field": field, "code": code})
}

func (s *Server) putSecret(w http.ResponseWriter, r *http.Request, sc *scope, name string) {
	upper := strings.ToUpper(name)
	if !secretName.MatchString(name) || strings.HasPrefix(upper, "GITHUB_") {
		invalid(w, "name", "invalid")
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		apiError(w, http.StatusBadRequest, "Problems reading the request body")
		return
	}
	var req struct {
		EncryptedValue        *string  `json:"encrypted_value"`
		KeyID                 *string  `json:"key_id"`
		Visibility            *string  `json:"visibility"`
		SelectedRepositoryIDs *[]int64 `json:"selected_repository_ids"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		apiError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	if req.EncryptedValue == nil || !base64Pattern.MatchString(*req.EncryptedValue) {
		invalid(w, "encrypted_value", "invalid")
		return
	}
	if req.KeyID == nil || *req.KeyID != sc.keyID {
		invalid(w, "key_id", "invalid")
		return
	}
	ct, err := base64.StdEncoding.DecodeString(*req.EncryptedValue)
	if err != nil {
		invalid(w, "encrypted_value", "invalid")
		return
	}
	v, ok := box.OpenAnonymous(nil, ct, s.publicKeys[sc.keyID], s.privateKeys[sc.keyID])
	if !ok {
		invalid(w, "encrypted_value", "invalid")
		return
	}
	if len(v) > MaxValue {
		invalid(w, "encrypted_value", "too_large")
		return
	}
	var visibility string
	if sc.kind == "org" {
		if req.Visibility == nil {
			invalid(w, "visibility", "missing_field")
			return
		}
		switch visibility = *req.Visibility; visibility {
		case "all", "private", "selected":
		default:
			invalid(w, "visibility", "invalid")
			return
		}
		if req.SelectedRepositoryIDs != nil && visibility != "selected" {
			invalid(w, "selected_repository_ids", "invalid")
			return
		}
	}
	now := s.now().UTC().Truncate(time.Second)
	st := sc.secrets[upper]
	created := st == nil
	if created {
		st = &stored{name: upper, createdAt: now}
		sc.secrets[upper] = st
	}
	st.ciphertext, st.keyID, st.updatedAt = ct, sc.keyID, now
	if sc.kind == "org" {
		switch {
		case visibility != "selected":
			st.selected = nil
		case req.SelectedRepositoryIDs != nil:
			st.selected = append([]int64(nil), *req.SelectedRepositoryIDs...)
		}
		st.visibility = visibility
	}
	if created {
		writeJSON(w, http.StatusCreated, map[string]any{})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
