package rotation

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/passman-dev/passman/secret"
)

// Config keys of the postgres connector.
const (
	pgAdminDSN = "admin_dsn"
	pgRole     = "role"
	pgRoles    = "roles"
	pgTestDSN  = "test_dsn"
)

// pgStepTimeout bounds a step whose context has no deadline: a server that
// accepts the TCP connection and then says nothing would otherwise hang
// the rotation for ever.
const pgStepTimeout = time.Minute

// pgMaxIdentLen is PostgreSQL's NAMEDATALEN-1: longer names are truncated by
// the server, so the role altered would not be the one configured.
const pgMaxIdentLen = 63

// Postgres is the Factory of the "postgres" connector, which rotates the
// passwords of PostgreSQL login roles. Config:
//
//   - admin_dsn (required): a reference, "env:NAME" or "secret:PATH", to
//     the DSN of a role allowed to ALTER ROLE (a superuser, or one with
//     CREATEROLE). Resolved at each step, never kept.
//   - role: single-user strategy. The stored value is the role's password;
//     Set changes it (the old one stops working at once) and Revoke has
//     nothing left to do.
//   - roles: "app_a,app_b", two-user strategy. The stored value is JSON,
//     {"username": ..., "password": ...}; each rotation gives the role that
//     is not current a new password, so the current credential keeps
//     working through the grace period, and Revoke then replaces the
//     previous role's password with a random one nobody knows.
//   - test_dsn: a DSN without password that Test connects to as the role;
//     the user in it is replaced by the role. Default: the admin DSN with
//     the role's user and password (same host, port, database and TLS
//     settings).
//
// Exactly one of role and roles is required. Test proves the password only
// if the server's pg_hba.conf asks the test connection for one.
func Postgres(cfg map[string]string, r Resolver) (Connector, error) {
	if err := CheckKeys(cfg, []string{pgAdminDSN}, []string{pgRole, pgRoles, pgTestDSN}); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%w: postgres connector needs a resolver for %s", secret.ErrInvalidArgument, pgAdminDSN)
	}
	if err := pgCheckRef(cfg[pgAdminDSN]); err != nil {
		return nil, fmt.Errorf("%w: config key %q: %v", secret.ErrInvalidArgument, pgAdminDSN, err)
	}
	c := &pgConnector{adminRef: cfg[pgAdminDSN], testDSN: cfg[pgTestDSN], r: r}
	if c.testDSN != "" {
		if err := pgCheckTestDSN(c.testDSN); err != nil {
			return nil, fmt.Errorf("%w: config key %q: %v", secret.ErrInvalidArgument, pgTestDSN, err)
		}
	}
	role, roles := cfg[pgRole], cfg[pgRoles]
	switch {
	case role != "" && roles != "":
		return nil, fmt.Errorf("%w: config keys %q and %q are exclusive: set role for the single-user strategy or roles for the two-user one", secret.ErrInvalidArgument, pgRole, pgRoles)
	case role != "":
		if err := pgCheckRoleName(role); err != nil {
			return nil, fmt.Errorf("%w: config key %q: %v", secret.ErrInvalidArgument, pgRole, err)
		}
		return &pgSingleUser{pgConnector: c, role: role}, nil
	case roles != "":
		parts := pgSplitRoles(roles)
		if len(parts) != 2 {
			return nil, fmt.Errorf("%w: config key %q: want exactly two roles separated by a comma, got %d", secret.ErrInvalidArgument, pgRoles, len(parts))
		}
		for i := range parts {
			if err := pgCheckRoleName(parts[i]); err != nil {
				return nil, fmt.Errorf("%w: config key %q: role %d: %v", secret.ErrInvalidArgument, pgRoles, i+1, err)
			}
		}
		if parts[0] == parts[1] {
			return nil, fmt.Errorf("%w: config key %q: the two roles must differ", secret.ErrInvalidArgument, pgRoles)
		}
		return &pgTwoUser{pgConnector: c, roles: [2]string{parts[0], parts[1]}}, nil
	default:
		return nil, fmt.Errorf("%w: config key %q or %q is required", secret.ErrInvalidArgument, pgRole, pgRoles)
	}
}

// pgSplitRoles reads the roles param: names separated by commas, spaces
// around each trimmed. Bind checks the names it returns against the
// connection's allowed_roles, so the role checked is the role altered.
func pgSplitRoles(roles string) []string {
	parts := strings.Split(roles, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

var pgEnvName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// pgCheckRef accepts only references: config is stored in metadata, which
// must hold no secrets, and a DSN usually holds a password.
func pgCheckRef(ref string) error {
	switch kind, name, _ := strings.Cut(ref, ":"); kind {
	case "env":
		if !pgEnvName.MatchString(name) {
			return errors.New(`"env:" must be followed by an environment variable name`)
		}
	case "secret":
		if err := secret.ValidatePath(name); err != nil {
			return fmt.Errorf(`"secret:" must be followed by a secret path: %v`, err)
		}
	default:
		// The value is not quoted: it may be a DSN, password included.
		return errors.New(`want a reference, "env:NAME" or "secret:PATH", not the DSN itself`)
	}
	return nil
}

var pgDSNPassword = regexp.MustCompile(`(^|\s)password\s*=`)

// pgCheckTestDSN rejects a DSN that pgx cannot parse or that holds a password
// (config is not the place for one, and Test replaces it anyway). Errors
// never quote the DSN.
func pgCheckTestDSN(dsn string) error {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				return errors.New("must not hold a password: Test logs in with the rotated one")
			}
		}
	} else if pgDSNPassword.MatchString(dsn) {
		return errors.New("must not hold a password: Test logs in with the rotated one")
	}
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return errors.New("pgx cannot parse it as a URL or keyword/value DSN")
	}
	return nil
}

// pgCheckRoleName accepts what the server can store as a role name. Names
// are always quoted, so case and punctuation are kept as written (App_A is
// not app_a).
func pgCheckRoleName(name string) error {
	switch {
	case name == "":
		return errors.New("role name is empty")
	case len(name) > pgMaxIdentLen:
		return fmt.Errorf("role name is %d bytes, at most %d", len(name), pgMaxIdentLen)
	case !utf8.ValidString(name):
		return errors.New("role name is not valid UTF-8")
	case strings.HasPrefix(name, "pg_"):
		return errors.New(`role names starting with "pg_" are reserved for the server`)
	}
	for _, c := range name {
		if unicode.IsControl(c) {
			return fmt.Errorf("role name holds control character %U", c)
		}
	}
	return nil
}

// pgConnector holds what both strategies share: reaching the server as
// admin to set a password, and as a role to test one.
type pgConnector struct {
	adminRef string
	testDSN  string
	r        Resolver
}

// pgWithTimeout gives ctx a deadline if it has none.
func pgWithTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, pgStepTimeout)
}

// adminConfig resolves the admin DSN. Errors name the reference, never the
// DSN: pgx's parse errors keep it, password and all, in a field.
func (c *pgConnector) adminConfig(ctx context.Context) (*pgx.ConnConfig, error) {
	v, err := c.r.Resolve(ctx, c.adminRef)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", pgAdminDSN, err)
	}
	cfg, err := pgx.ParseConfig(string(v.Reveal()))
	if err != nil {
		return nil, fmt.Errorf("%s: not a DSN pgx can parse", pgAdminDSN)
	}
	return cfg, nil
}

// setPassword connects as admin and gives role the password pw.
func (c *pgConnector) setPassword(ctx context.Context, role string, pw []byte) error {
	ctx, cancel := pgWithTimeout(ctx)
	defer cancel()
	if err := pgCheckPassword(pw); err != nil {
		return fmt.Errorf("set password of role %q: %w", role, err)
	}
	lit, err := pgPasswordLiteral(pw)
	if err != nil {
		return fmt.Errorf("set password of role %q: %w", role, err)
	}
	cfg, err := c.adminConfig(ctx)
	if err != nil {
		return fmt.Errorf("set password of role %q: %w", role, err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return pgStepError(ctx, fmt.Sprintf("set password of role %q: connect as admin", role), err, cfg.Password)
	}
	defer func() { _ = conn.Close(ctx) }()

	// Keep the statement out of the server's logs and statistics where
	// this session may say so (these settings need superuser or a GRANT
	// SET; without it they are skipped). Each setting is tried on its own
	// so one refused does not stop the others, and in one round trip.
	if _, err := conn.PgConn().Exec(ctx, pgQuietSession).ReadAll(); err != nil && ctx.Err() != nil {
		return pgStepError(ctx, fmt.Sprintf("set password of role %q", role), err, cfg.Password)
	}
	// The simple query protocol: ALTER ROLE takes no bind parameters, and
	// pgx's extended protocol would cache the statement, password
	// included, as a prepared statement on both ends.
	sql := "ALTER ROLE " + pgx.Identifier{role}.Sanitize() + " WITH PASSWORD " + lit
	if _, err := conn.PgConn().Exec(ctx, sql).ReadAll(); err != nil {
		return pgStepError(ctx, fmt.Sprintf("set password of role %q", role), err, cfg.Password, string(pw), lit)
	}
	return nil
}

// pgQuietSession turns off, for this session, the logging and statistics
// that would record ALTER ROLE's text: log_statement (ddl and all),
// log_min_duration_statement, log_min_error_statement (the text of a
// failed statement) and pg_stat_statements. Each setting is its own
// subtransaction, so one the role may not change leaves the others set.
const pgQuietSession = `DO $passman$
DECLARE
  s text[];
BEGIN
  FOREACH s SLICE 1 IN ARRAY ARRAY[
    ['log_statement', 'none'],
    ['log_min_duration_statement', '-1'],
    ['log_min_error_statement', 'panic'],
    ['pg_stat_statements.track_utility', 'off']]
  LOOP
    BEGIN
      PERFORM set_config(s[1], s[2], false);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
  END LOOP;
END
$passman$`

// testLogin connects as role with pw and runs SELECT 1.
func (c *pgConnector) testLogin(ctx context.Context, role string, pw []byte) error {
	ctx, cancel := pgWithTimeout(ctx)
	defer cancel()
	if err := pgCheckPassword(pw); err != nil {
		return fmt.Errorf("test role %q: %w", role, err)
	}
	var cfg *pgx.ConnConfig
	var err error
	var where string
	if c.testDSN != "" {
		cfg, err = pgx.ParseConfig(c.testDSN)
		if err != nil {
			return fmt.Errorf("test role %q: %s: not a DSN pgx can parse", role, pgTestDSN)
		}
		where = pgTestDSN
	} else {
		cfg, err = c.adminConfig(ctx)
		if err != nil {
			return fmt.Errorf("test role %q: %w", role, err)
		}
		where = "the server of " + pgAdminDSN + " " + c.adminRef
	}
	// Only the password authenticates: ParseConfig may have filled one in
	// from PGPASSWORD or a passfile, and the admin's would be wrong anyway.
	prior := cfg.Password
	cfg.User, cfg.Password = role, string(pw)
	what := fmt.Sprintf("test role %q: log in to %s", role, where)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return pgStepError(ctx, what, err, cfg.Password, prior)
	}
	defer func() { _ = conn.Close(ctx) }()
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		if err == nil {
			err = fmt.Errorf("SELECT 1 returned %d", one)
		}
		return pgStepError(ctx, what, err, cfg.Password, prior)
	}
	return nil
}

// pgCheckPassword rejects what PostgreSQL cannot store as a password. The
// errors say what is wrong, never where.
func pgCheckPassword(pw []byte) error {
	switch {
	case len(pw) == 0:
		// ALTER ROLE … PASSWORD '' clears the password instead.
		return fmt.Errorf("%w: password is empty", secret.ErrInvalidArgument)
	case slices.Contains(pw, 0):
		return fmt.Errorf("%w: password holds a NUL byte, which PostgreSQL text cannot", secret.ErrInvalidArgument)
	case !utf8.Valid(pw):
		return fmt.Errorf("%w: password is not valid UTF-8", secret.ErrInvalidArgument)
	}
	return nil
}

// pgPasswordLiteral returns the SQL literal ALTER ROLE … PASSWORD takes. An
// ASCII password is sent as a SCRAM-SHA-256 verifier computed here, as
// psql's \password does, so the password itself reaches neither the
// server's logs nor pg_stat_statements nor pg_stat_activity, whatever the
// server's logging settings. The server applies SASLprep to a non-ASCII
// password before hashing it, which this package cannot reproduce without
// a Unicode-normalisation dependency, so those are sent as an escaped
// literal, relying on pgQuietSession.
func pgPasswordLiteral(pw []byte) (string, error) {
	for _, b := range pw {
		if b >= utf8.RuneSelf {
			return pgQuoteLiteral(string(pw)), nil
		}
	}
	v, err := pgSCRAMVerifier(pw)
	if err != nil {
		return "", err
	}
	// Base64, "$" and ":" only: nothing to escape.
	return "'" + v + "'", nil
}

// pgQuoteLiteral quotes s as an escape string constant (E'…'), whose meaning
// does not depend on standard_conforming_strings: in a plain '…' constant a
// backslash is an escape only when that setting is off. Every backslash
// and quote is escaped, so nothing else in s is interpreted.
func pgQuoteLiteral(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 3)
	b.WriteString("E'")
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// SCRAM parameters: PostgreSQL's defaults (scram_iterations, and the salt
// length of scram_build_secret).
const (
	pgSCRAMIterations = 4096
	pgSCRAMSaltLen    = 16
)

// pgSCRAMVerifier computes the SCRAM-SHA-256 secret PostgreSQL stores for pw
// (RFC 5802, RFC 7677), in its format:
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
func pgSCRAMVerifier(pw []byte) (string, error) {
	salt := make([]byte, pgSCRAMSaltLen)
	_, _ = rand.Read(salt) // never fails (crypto/rand crashes the program instead)
	salted, err := pbkdf2.Key(sha256.New, string(pw), salt, pgSCRAMIterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("derive SCRAM key: %w", err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := mac(salted, "Server Key")
	enc := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", pgSCRAMIterations, enc(salt), enc(storedKey[:]), enc(serverKey)), nil
}

// pgError is an error from pgx or the server reduced to its text. pgx's
// errors are never wrapped: a ConnectError keeps the connection config,
// password included, and a ParseConfigError the whole DSN, where
// errors.As would reach them. Only a context error stays reachable, for
// errors.Is.
type pgError struct {
	msg    string
	ctxErr error
}

func (e *pgError) Error() string { return e.msg }
func (e *pgError) Unwrap() error { return e.ctxErr }

// pgStepError describes err, from the step what, without any of secrets
// (empty ones ignored): a message quoting one, as a server's syntax error
// quotes the statement near the error, is withheld whole.
func pgStepError(ctx context.Context, what string, err error, secrets ...string) error {
	e := &pgError{}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		e.ctxErr = ctx.Err()
		if e.ctxErr == nil {
			e.ctxErr = context.DeadlineExceeded
		}
	case ctx.Err() != nil:
		// pgx reports a deadline that interrupted I/O as an I/O timeout.
		e.ctxErr = ctx.Err()
	}
	text := err.Error()
	var pgErr *pgconn.PgError
	var connErr *pgconn.ConnectError
	isConnect := errors.As(err, &connErr)
	switch {
	case errors.As(err, &pgErr):
		// The server's own words, without pgx's connection preamble.
		text = fmt.Sprintf("%s: %s (SQLSTATE %s)", pgErr.Severity, pgErr.Message, pgErr.Code)
		if pgErr.Code == "42601" { // syntax_error quotes the statement
			text = "syntax error (SQLSTATE 42601)"
		}
		if isConnect {
			text = "connect: " + pgHideEndpoint(text, connErr.Config)
		}
	case isConnect:
		// pgx's text names the user, database, host and port the
		// connection's DSN holds: the operator's, not the caller's to see.
		text = "connect: " + netCause(err)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			text = "error text withheld: it quoted a secret"
			break
		}
	}
	e.msg = what + ": " + text
	return e
}

// pgHideEndpoint replaces the connection's user, database, host and port
// in a server message ("password authentication failed for user ...").
func pgHideEndpoint(text string, cfg *pgconn.Config) string {
	if cfg == nil {
		return text
	}
	for _, s := range []struct{ v, as string }{{cfg.User, "[user]"}, {cfg.Database, "[database]"}, {cfg.Host, "[host]"}, {strconv.Itoa(int(cfg.Port)), "[port]"}} {
		if len(s.v) > 1 {
			text = strings.ReplaceAll(text, s.v, s.as)
		}
	}
	return text
}

// pgSingleUser rotates one role's password; the stored value is the
// password.
type pgSingleUser struct {
	*pgConnector
	role string
}

// Set changes the role's password; the old one stops working at once.
func (c *pgSingleUser) Set(ctx context.Context, t Target) error {
	return c.setPassword(ctx, c.role, t.Value.Reveal())
}

// Test logs in as the role with t.Value.
func (c *pgSingleUser) Test(ctx context.Context, t Target) error {
	return c.testLogin(ctx, c.role, t.Value.Reveal())
}

// Revoke has nothing to do: Set replaced the previous password.
func (c *pgSingleUser) Revoke(context.Context, Target) error { return nil }

// pgTwoUser alternates between two roles, so the current credential keeps
// working while the other role's is rotated.
type pgTwoUser struct {
	*pgConnector
	roles [2]string
}

// pgCredential is the two-user strategy's stored value.
type pgCredential struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// errPGNotCredential never wraps encoding/json's errors, which can quote
// a character of the value.
var errPGNotCredential = fmt.Errorf("%w: value is not a two-user credential (JSON with username and password)", secret.ErrInvalidArgument)

func pgParseCredential(v secret.Value) (pgCredential, error) {
	var c pgCredential
	if err := json.Unmarshal(v.Reveal(), &c); err != nil || c.Username == "" || c.Password == "" {
		return pgCredential{}, errPGNotCredential
	}
	return c, nil
}

// credential parses v and checks its role is one of the configured two: a
// stored value must not be able to steer ALTER ROLE at any other role
// (the admin's, say).
func (c *pgTwoUser) credential(v secret.Value) (pgCredential, error) {
	cred, err := pgParseCredential(v)
	if err != nil {
		return cred, err
	}
	if cred.Username != c.roles[0] && cred.Username != c.roles[1] {
		return pgCredential{}, fmt.Errorf("%w: value's username %q is not one of the configured roles %q", secret.ErrInvalidArgument, cred.Username, c.roles)
	}
	return cred, nil
}

// Compose returns the credential for the role current does not hold:
// roles' second if current's username is the first, otherwise the first.
// So a first rotation (current zero), a current value that is not a
// two-user credential (a secret moving from the single-user strategy) and
// one naming a role no longer configured all start with the first role.
func (c *pgTwoUser) Compose(current, generated secret.Value) (secret.Value, error) {
	if err := pgCheckPassword(generated.Reveal()); err != nil {
		return secret.Value{}, fmt.Errorf("compose two-user credential: generated %w", err)
	}
	role := c.roles[0]
	if cur, err := pgParseCredential(current); err == nil && cur.Username == c.roles[0] {
		role = c.roles[1]
	}
	b, err := json.Marshal(pgCredential{Username: role, Password: string(generated.Reveal())})
	if err != nil {
		return secret.Value{}, errors.New("compose two-user credential: cannot encode it")
	}
	return secret.NewValue(b), nil
}

// Set gives the value's role the value's password. The other role, the
// current one, is untouched.
func (c *pgTwoUser) Set(ctx context.Context, t Target) error {
	cred, err := c.credential(t.Value)
	if err != nil {
		return fmt.Errorf("set: %w", err)
	}
	return c.setPassword(ctx, cred.Username, []byte(cred.Password))
}

// Test logs in as the value's role with its password.
func (c *pgTwoUser) Test(ctx context.Context, t Target) error {
	cred, err := c.credential(t.Value)
	if err != nil {
		return fmt.Errorf("test: %w", err)
	}
	return c.testLogin(ctx, cred.Username, []byte(cred.Password))
}

// Revoke gives the previous value's role a random password nobody keeps,
// so the previous credential stops working. Repeating it only picks
// another random password. A zero value has nothing to revoke; one that is
// not a two-user credential is an error, as there is no telling which role
// it opened.
func (c *pgTwoUser) Revoke(ctx context.Context, t Target) error {
	if t.Value.Len() == 0 {
		return nil
	}
	cred, err := c.credential(t.Value)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	return c.setPassword(ctx, cred.Username, []byte(rand.Text()))
}
