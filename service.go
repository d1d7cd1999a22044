// Package passman defines Service, the one interface through which every
// front end (the CLI, the Terraform provider, the GitHub Action, the HTTP
// server) works with secrets. The in-process core (package core) and the
// remote client implement it, so a front end never knows which it holds.
package passman

import (
	"context"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/secret"
)

// Service is what a caller can do with secrets. Every method is authorised
// and audited by the implementation; errors wrap the sentinels in package
// secret (use secret.Class to name them).
type Service interface {
	// Put writes a new version of path.
	Put(ctx context.Context, path string, value secret.Value, opts secret.PutOptions) (secret.VersionInfo, error)
	// Get reads one version (current unless sel says otherwise).
	Get(ctx context.Context, path string, sel secret.Selector) (secret.Versioned, error)
	// Describe returns metadata and version history without values.
	Describe(ctx context.Context, path string) (secret.Secret, error)
	// List returns one page of secrets under a prefix, sorted by path.
	List(ctx context.Context, opts secret.ListOptions) (secret.ListPage, error)
	// Rollback writes an older version's value back as a new current version.
	Rollback(ctx context.Context, path string, version int) (secret.VersionInfo, error)
	// Delete soft-deletes versions (current when none are named).
	Delete(ctx context.Context, path string, versions []int) error
	// Undelete restores soft-deleted versions.
	Undelete(ctx context.Context, path string, versions []int) error
	// Destroy removes the named versions' ciphertext for good.
	Destroy(ctx context.Context, path string, versions []int) error
	// Purge removes a secret with all its versions and metadata.
	Purge(ctx context.Context, path string) error
	// UpdateMetadata changes a secret's metadata.
	UpdateMetadata(ctx context.Context, path string, u secret.MetadataUpdate) (secret.Metadata, error)
	// SetStage labels a version with a stage (version 0 removes the label).
	SetStage(ctx context.Context, path string, stage secret.Stage, version int) error
	// LookupFingerprint finds managed versions by value fingerprint.
	LookupFingerprint(ctx context.Context, fingerprint string) ([]secret.FingerprintMatch, error)
	// VerifyAudit checks the audit log's hash chain against the store's head.
	VerifyAudit(ctx context.Context) (audit.Report, error)
	// QueryAudit returns audit entries matching f, oldest first; limit > 0
	// keeps only the last limit of them.
	QueryAudit(ctx context.Context, f audit.Filter, limit int) ([]audit.Entry, error)
}
