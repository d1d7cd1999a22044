package rotation

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-github/v62/github"
	"golang.org/x/crypto/nacl/box"

	"github.com/passman-dev/passman/secret"
)

// GitHub Actions limits and the tolerances this connector applies to them.
const (
	// githubMaxValue is GitHub's documented limit on a secret's value.
	githubMaxValue = 48 * 1024
	// githubHTTPTimeout bounds one API request when the caller's context
	// has no deadline: a hung connection must not hold a rotation forever.
	githubHTTPTimeout = 30 * time.Second
	// githubClockTolerance is how much older than the Set the secret's
	// updated_at may look before Test calls the Set lost. The Set's time
	// comes from GitHub's own Date header, so this only absorbs the gap
	// between GitHub's front ends and its database, and second rounding.
	githubClockTolerance = time.Minute
)

// GitHub is the connector that keeps a GitHub Actions secret equal to the
// managed secret. Config:
//
//	name         the Actions secret's name: A-Z 0-9 _, not starting with a
//	             digit or GITHUB_ (required)
//	token        reference to a token allowed to write the secret:
//	             "env:NAME" or "secret:PATH", resolved at each step (required)
//	repo         a repository secret in owner/repo
//	environment  with repo: a secret of that deployment environment
//	org          an organization secret of that organization
//	owner        the repository's owner (required with repo; with org it
//	             may be given and must then equal org)
//	visibility   org only: all, private or selected. Without it a rotation
//	             keeps the visibility the secret has (private for a new
//	             one), so rotating never widens or narrows who can read it.
//	api_url      GitHub Enterprise Server's API root (https; http only to a
//	             loopback address, for tests). Default: api.github.com.
//
// Set fetches the scope's public key, seals the value to it (a NaCl sealed
// box, as GitHub requires), and PUTs it with the key's id; a 422 (the key
// rotated between fetch and put) re-fetches the key once. Test reads the
// secret's metadata back. Revoke does nothing: the secret holds one value,
// so setting the new one already removed the previous one.
func GitHub(cfg map[string]string, r Resolver) (Connector, error) {
	if err := CheckKeys(cfg, []string{"name", "token"}, []string{"owner", "repo", "environment", "org", "visibility", "api_url"}); err != nil {
		return nil, err
	}
	g := &githubConnector{
		resolver:   r,
		name:       cfg["name"],
		tokenRef:   cfg["token"],
		owner:      cfg["owner"],
		repo:       cfg["repo"],
		env:        cfg["environment"],
		org:        cfg["org"],
		visibility: cfg["visibility"],
		apiURL:     cfg["api_url"],
		setAt:      map[string]time.Time{},
	}
	if r == nil {
		return nil, fmt.Errorf("%w: github connector needs a resolver for its token", secret.ErrInvalidArgument)
	}
	if err := githubValidateSecretName(g.name); err != nil {
		return nil, err
	}
	if err := checkCredentialRef("token", g.tokenRef); err != nil {
		return nil, err
	}
	switch {
	case g.org != "" && (g.repo != "" || g.env != ""):
		return nil, fmt.Errorf("%w: config keys \"org\" and \"repo\"/\"environment\" are exclusive: give one scope", secret.ErrInvalidArgument)
	case g.org != "":
		g.scope = githubOrg
		if err := githubValidateLogin("org", g.org); err != nil {
			return nil, err
		}
		if g.owner != "" && !strings.EqualFold(g.owner, g.org) {
			return nil, fmt.Errorf("%w: config key \"owner\" must equal \"org\" for an organization secret (or be left out)", secret.ErrInvalidArgument)
		}
		switch g.visibility {
		case "", "all", "private", "selected":
		default:
			return nil, fmt.Errorf("%w: config key \"visibility\" must be all, private or selected", secret.ErrInvalidArgument)
		}
	case g.repo != "":
		g.scope = githubRepo
		if g.env != "" {
			g.scope = githubEnv
			if err := githubValidateEnvironment(g.env); err != nil {
				return nil, err
			}
		}
		if g.owner == "" {
			return nil, fmt.Errorf("%w: config key \"owner\" is required with \"repo\"", secret.ErrInvalidArgument)
		}
		if err := githubValidateLogin("owner", g.owner); err != nil {
			return nil, err
		}
		if err := githubValidateRepo(g.repo); err != nil {
			return nil, err
		}
		if g.visibility != "" {
			return nil, fmt.Errorf("%w: config key \"visibility\" applies to organization secrets only", secret.ErrInvalidArgument)
		}
	case g.env != "":
		return nil, fmt.Errorf("%w: config key \"environment\" needs \"repo\" (and \"owner\")", secret.ErrInvalidArgument)
	default:
		return nil, fmt.Errorf("%w: config needs a scope: \"repo\", \"repo\" with \"environment\", or \"org\"", secret.ErrInvalidArgument)
	}
	if g.apiURL != "" {
		if err := githubValidateAPIURL(g.apiURL); err != nil {
			return nil, err
		}
	}
	return g, nil
}

type githubScope int

const (
	githubRepo githubScope = iota + 1
	githubEnv
	githubOrg
)

type githubConnector struct {
	resolver              Resolver
	name, tokenRef        string
	owner, repo, env, org string
	visibility, apiURL    string
	scope                 githubScope
	httpClient            *http.Client // nil: a default one; tests may set it

	mu    sync.Mutex
	setAt map[string]time.Time // path@version → GitHub's clock before the PUT
}

// describe names the secret for errors: never the token or the value.
func (g *githubConnector) describe() string {
	switch g.scope {
	case githubOrg:
		return fmt.Sprintf("github secret %s of org %s", g.name, g.org)
	case githubEnv:
		return fmt.Sprintf("github secret %s of environment %q in %s/%s", g.name, g.env, g.owner, g.repo)
	default:
		return fmt.Sprintf("github secret %s of repo %s/%s", g.name, g.owner, g.repo)
	}
}

// githubAPI is one step's authenticated client, with the repository id an
// environment secret's endpoints are addressed by.
type githubAPI struct {
	c      *github.Client
	repoID int
}

// client resolves the token (at step time, so a rotated token is picked
// up) and builds a client for this step.
func (g *githubConnector) client(ctx context.Context) (*githubAPI, []byte, error) {
	tok, err := resolveCredential(ctx, g.resolver, "token", g.tokenRef)
	if err != nil {
		return nil, nil, err
	}
	token := strings.TrimSpace(string(tok.Reveal()))
	if token == "" || strings.IndexFunc(token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return nil, nil, fmt.Errorf("%w: token %s resolves to an empty or malformed token", secret.ErrInvalidArgument, g.tokenRef)
	}
	hc := g.httpClient
	if hc == nil {
		hc = &http.Client{Timeout: githubHTTPTimeout}
	}
	c := github.NewClient(hc).WithAuthToken(token)
	if g.apiURL != "" {
		if c, err = c.WithEnterpriseURLs(g.apiURL, g.apiURL); err != nil {
			return nil, nil, fmt.Errorf("%w: config key \"api_url\": %w", secret.ErrInvalidArgument, err)
		}
	}
	api := &githubAPI{c: c}
	if g.scope == githubEnv {
		// Environment secrets are addressed by repository id, not name.
		repo, _, err := c.Repositories.Get(ctx, g.owner, g.repo)
		if err != nil {
			return nil, []byte(token), fmt.Errorf("look up repository %s/%s: %w", g.owner, g.repo, githubClassify(err))
		}
		if repo.GetID() <= 0 || repo.GetID() > int64(^uint(0)>>1) {
			return nil, []byte(token), fmt.Errorf("look up repository %s/%s: GitHub returned no usable id", g.owner, g.repo)
		}
		api.repoID = int(repo.GetID())
	}
	return api, []byte(token), nil
}

func (g *githubConnector) publicKey(ctx context.Context, api *githubAPI) (*github.PublicKey, *github.Response, error) {
	switch g.scope {
	case githubOrg:
		return api.c.Actions.GetOrgPublicKey(ctx, g.org)
	case githubEnv:
		return api.c.Actions.GetEnvPublicKey(ctx, api.repoID, url.PathEscape(g.env))
	default:
		return api.c.Actions.GetRepoPublicKey(ctx, g.owner, g.repo)
	}
}

func (g *githubConnector) get(ctx context.Context, api *githubAPI) (*github.Secret, error) {
	var (
		s   *github.Secret
		err error
	)
	switch g.scope {
	case githubOrg:
		s, _, err = api.c.Actions.GetOrgSecret(ctx, g.org, g.name)
	case githubEnv:
		s, _, err = api.c.Actions.GetEnvSecret(ctx, api.repoID, url.PathEscape(g.env), g.name)
	default:
		s, _, err = api.c.Actions.GetRepoSecret(ctx, g.owner, g.repo, g.name)
	}
	return s, err
}

func (g *githubConnector) put(ctx context.Context, api *githubAPI, es *github.EncryptedSecret) error {
	var err error
	switch g.scope {
	case githubOrg:
		_, err = api.c.Actions.CreateOrUpdateOrgSecret(ctx, g.org, es)
	case githubEnv:
		_, err = api.c.Actions.CreateOrUpdateEnvSecret(ctx, api.repoID, url.PathEscape(g.env), es)
	default:
		_, err = api.c.Actions.CreateOrUpdateRepoSecret(ctx, g.owner, g.repo, es)
	}
	return err
}

// Set implements Connector.
func (g *githubConnector) Set(ctx context.Context, t Target) error {
	value := t.Value.Reveal()
	if len(value) > githubMaxValue {
		return fmt.Errorf("%w: %s: set v%d: value is %d bytes, GitHub allows %d", secret.ErrTooLarge, g.describe(), t.Version, len(value), githubMaxValue)
	}
	api, token, err := g.client(ctx)
	if err != nil {
		return redactError(fmt.Errorf("%s: set v%d: %w", g.describe(), t.Version, err), value, token)
	}
	visibility, err := g.orgVisibility(ctx, api)
	if err != nil {
		return redactError(fmt.Errorf("%s: set v%d: %w", g.describe(), t.Version, err), value, token)
	}
	var since time.Time
	for attempt := 0; ; attempt++ {
		at, err := g.sealAndPut(ctx, api, value, visibility)
		if attempt == 0 {
			since = at
		}
		if err == nil {
			break
		}
		// GitHub answers 422 when key_id is not the scope's current key:
		// the key rotated between our fetch and our put. One re-fetch
		// covers that; a 422 for any other reason fails the same way
		// again, so the retry costs only a round trip.
		var er *github.ErrorResponse
		if attempt == 0 && errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusUnprocessableEntity {
			continue
		}
		return redactError(fmt.Errorf("%s: set v%d: %w", g.describe(), t.Version, err), value, token)
	}
	g.mu.Lock()
	g.setAt[githubSetKey(t)] = since
	g.mu.Unlock()
	return nil
}

// sealAndPut fetches the public key, seals value to it and stores it. It
// returns GitHub's clock before the put (from the key response's Date
// header; ours when that is missing) for Test to compare updated_at with.
func (g *githubConnector) sealAndPut(ctx context.Context, api *githubAPI, value []byte, visibility string) (time.Time, error) {
	before := time.Now()
	pk, resp, err := g.publicKey(ctx, api)
	if err != nil {
		return before, fmt.Errorf("fetch public key: %w", githubClassify(err))
	}
	if resp != nil && resp.Response != nil {
		if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			before = d
		}
	}
	raw, err := base64.StdEncoding.DecodeString(pk.GetKey())
	if err != nil || len(raw) != 32 || pk.GetKeyID() == "" {
		return before, errors.New("fetch public key: GitHub returned a malformed key")
	}
	var pub [32]byte
	copy(pub[:], raw)
	sealed, err := box.SealAnonymous(nil, value, &pub, rand.Reader)
	if err != nil {
		return before, fmt.Errorf("seal: %w", err)
	}
	es := &github.EncryptedSecret{
		Name:           g.name,
		KeyID:          pk.GetKeyID(),
		EncryptedValue: base64.StdEncoding.EncodeToString(sealed),
		Visibility:     visibility,
	}
	if err := g.put(ctx, api, es); err != nil {
		return before, fmt.Errorf("put: %w", githubClassify(err))
	}
	return before, nil
}

// orgVisibility is the visibility to PUT an organization secret with,
// which GitHub requires on every write. Unconfigured, it is the secret's
// present one, so that a rotation does not change who can read it.
func (g *githubConnector) orgVisibility(ctx context.Context, api *githubAPI) (string, error) {
	if g.scope != githubOrg || g.visibility != "" {
		return g.visibility, nil
	}
	s, err := g.get(ctx, api)
	var er *github.ErrorResponse
	switch {
	case err == nil && s.Visibility != "":
		return s.Visibility, nil
	case err == nil, errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound:
		return "private", nil
	default:
		return "", fmt.Errorf("read current visibility: %w", githubClassify(err))
	}
}

// Test implements Connector. GitHub never returns a secret's value, not
// even encrypted, so the test cannot prove the target holds t.Value: it
// checks that the secret exists and was updated no earlier than this
// connector's Set of the same version. After a restart between Set and
// Test (the engine resuming at the test step) there is no Set time to
// compare with, and only existence is checked.
func (g *githubConnector) Test(ctx context.Context, t Target) error {
	api, token, err := g.client(ctx)
	if err != nil {
		return redactError(fmt.Errorf("%s: test v%d: %w", g.describe(), t.Version, err), t.Value.Reveal(), token)
	}
	s, err := g.get(ctx, api)
	if err != nil {
		return redactError(fmt.Errorf("%s: test v%d: %w", g.describe(), t.Version, githubClassify(err)), t.Value.Reveal(), token)
	}
	g.mu.Lock()
	since, ok := g.setAt[githubSetKey(t)]
	g.mu.Unlock()
	if ok && s.UpdatedAt.Before(since.Add(-githubClockTolerance)) {
		return fmt.Errorf("%w: %s: test v%d: GitHub says it was last updated at %s, before this rotation set it (%s): the update was lost or reverted",
			secret.ErrPrecondition, g.describe(), t.Version, s.UpdatedAt.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339))
	}
	return nil
}

// Revoke implements Connector: nothing to do, the secret holds only the
// new value since Set.
func (g *githubConnector) Revoke(context.Context, Target) error { return nil }

func githubSetKey(t Target) string { return t.Path + "@" + strconv.Itoa(t.Version) }

// githubClassify adds the sentinel an HTTP status stands for, so callers
// can branch with errors.Is; GitHub answers 404 for a resource the token
// may not see as well as for a missing one.
func githubClassify(err error) error {
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil {
		return err
	}
	switch er.Response.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %w", secret.ErrPermissionDenied, err)
	case http.StatusNotFound:
		return fmt.Errorf("%w (or the token may not see it): %w", secret.ErrNotFound, err)
	}
	return err
}

// githubValidateSecretName applies GitHub's naming rules for Actions
// secrets, in their canonical upper case (GitHub folds names to it).
func githubValidateSecretName(name string) error {
	if strings.HasPrefix(name, "GITHUB_") {
		return fmt.Errorf("%w: config key \"name\": must not start with GITHUB_ (reserved by GitHub)", secret.ErrInvalidArgument)
	}
	if name[0] >= '0' && name[0] <= '9' {
		return fmt.Errorf("%w: config key \"name\": must not start with a digit", secret.ErrInvalidArgument)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("%w: config key \"name\": only A-Z, 0-9 and _ are allowed", secret.ErrInvalidArgument)
		}
	}
	return nil
}

// githubValidateLogin checks a user or organization login. The checks are
// what keeps a config value from changing the request path ("/", "..",
// "?"); GitHub Enterprise allows "_" in logins, so it is allowed here.
func githubValidateLogin(key, s string) error {
	if len(s) > 100 || s[0] == '-' || s[0] == '.' {
		return fmt.Errorf("%w: config key %q: must be 1 to 100 characters, the first not a hyphen or a dot", secret.ErrInvalidArgument, key)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: config key %q: only A-Z a-z 0-9 - _ are allowed", secret.ErrInvalidArgument, key)
		}
	}
	return nil
}

func githubValidateRepo(s string) error {
	if len(s) > 100 || s == "." || s == ".." {
		return fmt.Errorf("%w: config key \"repo\": must be a repository name (1 to 100 characters, not . or ..), without the owner", secret.ErrInvalidArgument)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: config key \"repo\": only A-Z a-z 0-9 - _ . are allowed (give the owner in \"owner\")", secret.ErrInvalidArgument)
		}
	}
	return nil
}

// githubValidateEnvironment accepts what GitHub does (up to 255
// characters); the name is path-escaped when it goes into a URL.
func githubValidateEnvironment(s string) error {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 255 || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: config key \"environment\": must be 1 to 255 characters of UTF-8 without control characters", secret.ErrInvalidArgument)
	}
	return nil
}

// githubValidateAPIURL requires https, except to a loopback address: the
// token travels in every request.
func githubValidateAPIURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w: config key \"api_url\": must be an absolute http(s) URL without credentials, query or fragment", secret.ErrInvalidArgument)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("%w: config key \"api_url\": must use https (http only to a loopback address): the token is sent with every request", secret.ErrInvalidArgument)
		}
	default:
		return fmt.Errorf("%w: config key \"api_url\": scheme must be https", secret.ErrInvalidArgument)
	}
	return nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Helpers shared by the github, webhook and exec connectors.

// checkCredentialRef validates a reference to a connector credential at
// config time, so a typo fails when the rotation is configured, not when
// it first runs. Config never holds the credential itself.
func checkCredentialRef(key, ref string) error {
	kind, name, ok := strings.Cut(ref, ":")
	switch {
	case ok && kind == "env":
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
				return fmt.Errorf("%w: config key %q: env:NAME needs a variable name ([A-Za-z_][A-Za-z0-9_]*)", secret.ErrInvalidArgument, key)
			}
		}
		if name != "" {
			return nil
		}
	case ok && kind == "secret":
		if err := secret.ValidatePath(name); err != nil {
			return fmt.Errorf("%w: config key %q: secret:PATH: %w", secret.ErrInvalidArgument, key, err)
		}
		return nil
	}
	// The value is not quoted: a credential pasted where its reference
	// belongs must not be echoed into logs.
	return fmt.Errorf("%w: config key %q must be a reference, env:NAME or secret:PATH", secret.ErrInvalidArgument, key)
}

// resolveCredential resolves a credential reference at step time.
func resolveCredential(ctx context.Context, r Resolver, key, ref string) (secret.Value, error) {
	v, err := r.Resolve(ctx, ref)
	if err != nil {
		return secret.Value{}, fmt.Errorf("resolve %s (%s): %w", key, ref, err)
	}
	if v.Len() == 0 {
		return secret.Value{}, fmt.Errorf("%w: %s (%s) resolves to an empty value", secret.ErrInvalidArgument, key, ref)
	}
	return v, nil
}

// parseDurationKey reads an optional duration config key.
func parseDurationKey(cfg map[string]string, key string, def, lo, hi time.Duration) (time.Duration, error) {
	s, ok := cfg[key]
	if !ok || s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("%w: config key %q: want a duration from %s to %s (like 10s)", secret.ErrInvalidArgument, key, lo, hi)
	}
	return d, nil
}

// parseIntKey reads an optional integer config key.
func parseIntKey(cfg map[string]string, key string, def, lo, hi int) (int, error) {
	s, ok := cfg[key]
	if !ok || s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: config key %q: want an integer from %d to %d", secret.ErrInvalidArgument, key, lo, hi)
	}
	return n, nil
}
