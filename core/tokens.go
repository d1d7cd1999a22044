package core

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

// Audit actions of token administration.
const (
	ActionTokenCreate = "token.create"
	ActionTokenRevoke = "token.revoke"
	// ActionTokenRevokeSelf is a token ending itself (RevokeSelf).
	ActionTokenRevokeSelf = "token.revoke-self"
	ActionTokenList       = "token.list"
	ActionTokenReap       = "token.reap"
)

// TokenPrefix starts every bearer token passman issues, so a scanner (or a
// human) recognises one in a log or a commit.
const TokenPrefix = "pmt_"

// Token limits. They keep a token record, and so the policy input and the
// audit entry of its creation, small.
const (
	MaxTokenIdentityLen   = 256
	MaxTokenClaims        = 32
	MaxTokenClaimKeyLen   = 64
	MaxTokenClaimValueLen = 1024
	// tokenBytes is the token's entropy: 256 bits.
	tokenBytes = 32
	// accessorLen is the accessor's length in hex digits (64 bits).
	accessorLen = 16
)

// Token records live in the store's caller-owned metadata keyspace, in the
// same bbolt file as the secrets, so they are as durable as the secrets and
// backed up with them. Only the SHA-256 of a token is stored: a stolen
// database yields no usable token. There is one key per token and no index:
// a listing scans the prefix, so a login writes one small record however
// many tokens exist.
const (
	tokenMetaPrefix = "token/" // token/<accessor> -> tokenRecord (JSON)
	// legacyTokenIndexMeta is the JSON array of every accessor that stores
	// kept before listings scanned the prefix. Each login rewrote it whole
	// (about 2 MB at 100k tokens); Open deletes it (migrateTokenIndex).
	legacyTokenIndexMeta = "token-index"
)

// DefaultTokenRetention is how long ReapTokens keeps the record of an
// expired or revoked token by default: long enough that a listing still
// explains an accessor seen in yesterday's logs; the audit log keeps its
// creation and revocation for ever.
const DefaultTokenRetention = 24 * time.Hour

// reapBatch bounds the records one reaping transaction removes, so it
// holds the database's write lock briefly and its audit entry, which
// lists the accessors, stays well under audit.MaxEntrySize.
const reapBatch = 1000

// tokenRecord is what the store keeps: the info and the token's hash.
type tokenRecord struct {
	secret.TokenInfo
	// Hash is the hex SHA-256 of the whole token text.
	Hash string `json:"hash"`
}

// hashToken returns the hex SHA-256 of a token's text.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateToken issues a bearer token for req.Identity with req.Claims. The
// token is returned once and never stored: only its hash is, under its
// accessor. Creating a token is an admin action; it is authorized and
// audited like a change to a secret (the entry names the accessor, never
// the token) and commits only if its audit entry was written.
func (l *Local) CreateToken(ctx context.Context, req secret.TokenRequest) (string, secret.TokenInfo, error) {
	o := op{action: ActionTokenCreate, perm: policy.ActionAdmin}
	if err := validateTokenRequest(req); err != nil {
		return "", secret.TokenInfo{}, l.deny(ctx, o, nil, err)
	}
	now := l.opts.now().UTC()
	info := secret.TokenInfo{
		Identity:  req.Identity,
		Claims:    maps.Clone(req.Claims),
		CreatedAt: now,
		CreatedBy: l.subject(ctx).ID,
	}
	if req.TTL > 0 {
		info.ExpiresAt = now.Add(req.TTL)
	}
	var token string
	o.details = map[string]string{"identity": req.Identity}
	if !info.ExpiresAt.IsZero() {
		o.details["expires_at"] = info.ExpiresAt.Format(time.RFC3339)
	}
	if len(req.Claims) > 0 {
		// Claims are not secret (they are policy input); record them so
		// the log says what the token may do.
		b, err := json.Marshal(req.Claims)
		if err != nil {
			return "", secret.TokenInfo{}, fmt.Errorf("encode claims: %w", err)
		}
		o.details["claims"] = string(b)
	}
	err := l.changeRecords(ctx, o, func(tx store.Tx) error {
		// A fresh token each attempt: an accessor that collides (one in
		// 2^64) is simply drawn again rather than overwriting a record.
		for range 3 {
			var b [tokenBytes]byte
			if _, err := rand.Read(b[:]); err != nil {
				return fmt.Errorf("generate token: %w", err)
			}
			token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
			hash := hashToken(token)
			info.Accessor = hash[:accessorLen]
			old, err := store.MetaTx(tx, tokenMetaPrefix+info.Accessor)
			if err != nil {
				return fmt.Errorf("read token record: %w", err)
			}
			if old != nil {
				continue
			}
			if err := putTokenRecord(tx, tokenRecord{TokenInfo: info, Hash: hash}); err != nil {
				return err
			}
			o.details["accessor"] = info.Accessor
			return nil
		}
		return fmt.Errorf("generate token: accessor collided three times")
	}, nil)
	if err != nil {
		return "", secret.TokenInfo{}, err
	}
	return token, info, nil
}

// RevokeToken revokes the token with the given accessor: it stops
// authenticating at once. The record is kept (marked revoked) so listings
// and the audit trail still explain the accessor. Revoking a revoked token
// succeeds and changes nothing; an unknown accessor is ErrNotFound.
func (l *Local) RevokeToken(ctx context.Context, accessor string) error {
	o := op{action: ActionTokenRevoke, perm: policy.ActionAdmin}
	if !validAccessor(accessor) {
		return l.deny(ctx, o, nil, fmt.Errorf("%w: a token accessor is %d lowercase hex digits", secret.ErrInvalidArgument, accessorLen))
	}
	o.details = map[string]string{"accessor": accessor}
	by := l.subject(ctx).ID
	return l.changeRecords(ctx, o, func(tx store.Tx) error {
		rec, err := getTokenRecord(tx, accessor)
		if err != nil {
			return err
		}
		if !rec.RevokedAt.IsZero() {
			return nil
		}
		rec.RevokedAt, rec.RevokedBy = l.opts.now().UTC(), by
		return putTokenRecord(tx, rec)
	}, func() { l.tokens.drop(accessor) })
}

// RevokeSelf revokes token, given by its holder: whoever holds a valid
// token may end it early, so no policy is asked (as Vault's
// auth/token/revoke-self). A CI job revokes the short-lived token it got
// from its OIDC login when it is done, instead of leaving it valid for
// the rest of its lifetime. An invalid, expired or revoked token is
// ErrUnauthenticated, as for any request.
func (l *Local) RevokeSelf(ctx context.Context, token string) error {
	info, err := l.LookupToken(ctx, token)
	if err != nil {
		return err
	}
	o := op{action: ActionTokenRevokeSelf, details: map[string]string{"accessor": info.Accessor}}
	by := l.subject(ctx).ID
	return l.commitRecords(ctx, o, nil, func(tx store.Tx) error {
		rec, err := getTokenRecord(tx, info.Accessor)
		if err != nil {
			return err
		}
		if !rec.RevokedAt.IsZero() {
			return nil
		}
		rec.RevokedAt, rec.RevokedBy = l.opts.now().UTC(), by
		return putTokenRecord(tx, rec)
	}, func() { l.tokens.drop(info.Accessor) })
}

// tokenCache keeps token records read by LookupToken, which every server
// request calls: a bbolt read and a JSON decode per request otherwise.
// It stays exact because only this process can open the store (bbolt
// locks the file) and every revocation goes through RevokeToken, which
// drops the entry once its transaction has committed.
//
// On a shared store (a cluster) other servers revoke tokens too: there a
// watch on the token records drops what another server changed, and ttl
// bounds how long a record is trusted whatever the watch does.
type tokenCache struct {
	mu  sync.Mutex
	m   map[string]cachedToken // by accessor
	ttl time.Duration          // 0: for ever
	// gen counts drops: a record read before a drop (a lookup racing a
	// revocation) must not be cached after it.
	gen uint64
}

// maxCachedTokens bounds the cache; past it the cache starts over.
const maxCachedTokens = 10000

type cachedToken struct {
	rec tokenRecord
	at  time.Time // when it was read, by the real clock
}

func (c *tokenCache) get(accessor string) (tokenRecord, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[accessor]
	if ok && c.ttl > 0 && time.Since(e.at) >= c.ttl {
		delete(c.m, accessor)
		ok = false
	}
	return e.rec, c.gen, ok
}

// put caches r, read at generation gen, unless a drop came since.
// The read time is taken before the store read (at by the caller), so the
// ttl bounds the age of what was read, not of when it was cached.
func (c *tokenCache) put(r tokenRecord, gen uint64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) >= maxCachedTokens {
		c.m = map[string]cachedToken{}
	}
	c.m[r.Accessor] = cachedToken{rec: r, at: at}
}

// clear forgets every record: the watch that keeps them exact lost track.
func (c *tokenCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
	c.gen++
}

func (c *tokenCache) drop(accessor string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, accessor)
	c.gen++
}

// ListTokens describes every token, revoked and expired ones included
// (until ReapTokens removes them), sorted by accessor. It is an admin
// action, authorized and audited.
func (l *Local) ListTokens(ctx context.Context) ([]secret.TokenInfo, error) {
	dec, err := l.authorize(ctx, op{action: ActionTokenList, perm: policy.ActionAdmin})
	if err != nil {
		return nil, err
	}
	var out []secret.TokenInfo
	err = l.db.View(ctx, func(tx store.Tx) error {
		return scanTokenRecords(tx, func(rec tokenRecord) error {
			out = append(out, rec.TokenInfo)
			return nil
		})
	})
	e := audit.Entry{Action: ActionTokenList, Details: map[string]string{"count": fmt.Sprint(len(out))}, Decision: dec}
	if err := l.read(ctx, e, err); err != nil {
		return nil, err
	}
	return out, nil
}

// LookupToken authenticates a bearer token: it returns the token's info if
// the token is one passman issued and it is neither expired nor revoked,
// and otherwise an error wrapping secret.ErrUnauthenticated. It is not
// authorized (it is how a caller gets an identity to authorize) and not
// audited (the request it authenticates is); callers log failures.
//
// The presented token's hash is compared with the stored one in constant
// time, so response timing tells nothing about how much of a guess matched.
func (l *Local) LookupToken(ctx context.Context, token string) (secret.TokenInfo, error) {
	if !strings.HasPrefix(token, TokenPrefix) || len(token) != len(TokenPrefix)+base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return secret.TokenInfo{}, fmt.Errorf("%w: not a passman token", secret.ErrUnauthenticated)
	}
	hash := hashToken(token)
	rec, gen, ok := l.tokens.get(hash[:accessorLen])
	if !ok {
		readAt := time.Now()
		err := l.db.View(ctx, func(tx store.Tx) error {
			var err error
			rec, err = getTokenRecord(tx, hash[:accessorLen])
			return err
		})
		switch {
		case errors.Is(err, secret.ErrNotFound):
			return secret.TokenInfo{}, fmt.Errorf("%w: unknown token", secret.ErrUnauthenticated)
		case err != nil:
			return secret.TokenInfo{}, fmt.Errorf("look up token: %w", err)
		}
		l.tokens.put(rec, gen, readAt)
	}
	if subtle.ConstantTimeCompare([]byte(hash), []byte(rec.Hash)) != 1 {
		return secret.TokenInfo{}, fmt.Errorf("%w: unknown token", secret.ErrUnauthenticated)
	}
	if !rec.RevokedAt.IsZero() {
		return secret.TokenInfo{}, fmt.Errorf("%w: token %s was revoked", secret.ErrUnauthenticated, rec.Accessor)
	}
	if rec.Expired(l.opts.now()) {
		return secret.TokenInfo{}, fmt.Errorf("%w: token %s expired at %s", secret.ErrUnauthenticated, rec.Accessor, rec.ExpiresAt.Format(time.RFC3339))
	}
	return rec.TokenInfo, nil
}

// ReapTokens removes the records of tokens that expired, or were revoked,
// more than keep ago, and returns how many it removed. Such a token no
// longer authenticates anyway; without reaping, every OIDC login would
// leave a record for ever. The audit log keeps each token's creation and
// revocation. Reaping is an admin action (the server runs it periodically
// as itself), authorized first and audited once per batch of removals,
// with the accessors removed; a run that finds nothing writes no entry.
func (l *Local) ReapTokens(ctx context.Context, keep time.Duration) (int, error) {
	o := op{action: ActionTokenReap, perm: policy.ActionAdmin, details: map[string]string{"retention": keep.String()}}
	if keep < 0 {
		return 0, l.deny(ctx, o, nil, fmt.Errorf("%w: token retention must not be negative", secret.ErrInvalidArgument))
	}
	dec, err := l.authorize(ctx, o)
	if err != nil {
		return 0, err
	}
	cutoff := l.opts.now().Add(-keep)
	// Candidates are found in a read transaction, which does not hold up
	// logins, and checked again inside each write.
	var due []string
	err = l.db.View(ctx, func(tx store.Tx) error {
		return scanTokenRecords(tx, func(rec tokenRecord) error {
			if rec.reapable(cutoff) {
				due = append(due, rec.Accessor)
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("reap tokens: %w", err)
	}
	reaped := 0
	for batch := range slices.Chunk(due, reapBatch) {
		var gone []string
		bo := o
		bo.details = maps.Clone(o.details)
		err := l.commitRecords(ctx, bo, dec, func(tx store.Tx) error {
			gone = gone[:0]
			for _, acc := range batch {
				rec, err := getTokenRecord(tx, acc)
				if errors.Is(err, secret.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if !rec.reapable(cutoff) {
					continue
				}
				if err := store.DeleteMeta(tx, tokenMetaPrefix+acc); err != nil {
					return fmt.Errorf("delete token record: %w", err)
				}
				gone = append(gone, acc)
			}
			bo.details["count"] = strconv.Itoa(len(gone))
			bo.details["accessors"] = strings.Join(gone, ",")
			return nil
		}, func() {
			for _, acc := range gone {
				l.tokens.drop(acc)
			}
		})
		if err != nil {
			return reaped, err
		}
		reaped += len(gone)
	}
	return reaped, nil
}

// reapable says whether the record's token expired or was revoked before
// cutoff.
func (r tokenRecord) reapable(cutoff time.Time) bool {
	return (!r.ExpiresAt.IsZero() && r.ExpiresAt.Before(cutoff)) ||
		(!r.RevokedAt.IsZero() && r.RevokedAt.Before(cutoff))
}

func validateTokenRequest(req secret.TokenRequest) error {
	if err := validLabel("identity", req.Identity, MaxTokenIdentityLen); err != nil {
		return err
	}
	if req.TTL < 0 {
		return fmt.Errorf("%w: token TTL must not be negative", secret.ErrInvalidArgument)
	}
	if len(req.Claims) > MaxTokenClaims {
		return fmt.Errorf("%w: a token has at most %d claims, got %d", secret.ErrInvalidArgument, MaxTokenClaims, len(req.Claims))
	}
	for k, v := range req.Claims {
		if err := validLabel("claim name", k, MaxTokenClaimKeyLen); err != nil {
			return err
		}
		if len(v) > MaxTokenClaimValueLen || !utf8.ValidString(v) || strings.ContainsFunc(v, isControl) {
			return fmt.Errorf("%w: claim %s: value must be at most %d bytes of printable UTF-8", secret.ErrInvalidArgument, k, MaxTokenClaimValueLen)
		}
	}
	return nil
}

// validLabel checks an identity or claim name: printable UTF-8 without
// spaces, so it reads unambiguously in audit entries and log lines. The
// error does not quote s, which may be anything a caller typed.
func validLabel(what, s string, max int) error {
	if s == "" || len(s) > max || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return isControl(r) || r == ' ' }) {
		return fmt.Errorf("%w: token %s must be 1 to %d bytes of printable UTF-8 without spaces", secret.ErrInvalidArgument, what, max)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

func validAccessor(s string) bool {
	if len(s) != accessorLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func getTokenRecord(tx store.Tx, accessor string) (tokenRecord, error) {
	var rec tokenRecord
	b, err := store.MetaTx(tx, tokenMetaPrefix+accessor)
	if err != nil {
		return rec, fmt.Errorf("read token record: %w", err)
	}
	if b == nil {
		return rec, fmt.Errorf("%w: no token with accessor %s", secret.ErrNotFound, accessor)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%w: token record %s: %v", secret.ErrCorrupt, accessor, err)
	}
	return rec, nil
}

func putTokenRecord(tx store.Tx, rec tokenRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode token record: %w", err)
	}
	if err := store.PutMeta(tx, tokenMetaPrefix+rec.Accessor, b); err != nil {
		return fmt.Errorf("write token record: %w", err)
	}
	return nil
}

// scanTokenRecords calls fn with every token record, in accessor order.
func scanTokenRecords(tx store.Tx, fn func(tokenRecord) error) error {
	return store.ScanMeta(tx, tokenMetaPrefix, func(name string, b []byte) (bool, error) {
		var rec tokenRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return false, fmt.Errorf("%w: token record %s: %v", secret.ErrCorrupt, strings.TrimPrefix(name, tokenMetaPrefix), err)
		}
		return true, fn(rec)
	})
}

// migrateTokenIndex deletes the token index of a store written before
// listings scanned the token records. The records were always one key per
// token, written in the same transaction as the index entry, so they are
// the whole truth and nothing else changes; the index is not even parsed,
// so a damaged one cannot keep the store from opening.
func (l *Local) migrateTokenIndex(ctx context.Context) error {
	b, err := l.st.Meta(ctx, legacyTokenIndexMeta)
	if err != nil || b == nil {
		return err
	}
	err = l.db.Update(ctx, func(tx store.Tx) error { return store.DeleteMeta(tx, legacyTokenIndexMeta) })
	if err != nil {
		return fmt.Errorf("migrate token index: %w", err)
	}
	return nil
}
