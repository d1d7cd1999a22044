package secret

import "time"

// TokenInfo describes a token, never the token itself.
type TokenInfo struct {
	// Accessor names the token in listings, audit entries and logs, and is
	// what revocation takes. It is the first 16 hex digits of the token's
	// SHA-256, which is useless for recovering the token.
	Accessor  string            `json:"accessor"`
	Identity  string            `json:"identity"`
	Claims    map[string]string `json:"claims,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	CreatedBy string            `json:"created_by"`
	// ExpiresAt is zero for a token that never expires.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// RevokedAt is zero for a token that was not revoked.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
}

// Expired reports whether the token has expired at now.
func (t TokenInfo) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// TokenRequest asks for a new bearer token.
type TokenRequest struct {
	// Identity becomes the subject's id (policy input.subject.id, the audit
	// entry's actor) for every request made with the token.
	Identity string
	// Claims become input.subject.claims, e.g. {"role": "ci"}.
	Claims map[string]string
	// TTL bounds the token's life; 0 means it never expires.
	TTL time.Duration
}
