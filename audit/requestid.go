package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// NewRequestID returns a new random request id (16 hex digits). The
// server names each HTTP request by one (X-Request-Id, its request log)
// and passes it down with WithRequestID, so the audit entries of a request
// carry the id its log line does.
func NewRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

type requestIDKey struct{}

// WithRequestID returns a context whose audit entries name id as their
// request.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID is ctx's request id, or a new one when it carries none (a
// local command: each operation is its own request).
func RequestID(ctx context.Context) string {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok && id != "" {
		return id
	}
	return NewRequestID()
}
