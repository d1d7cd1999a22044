package secret

import (
	"fmt"
	"time"
)

// Stage is a label on one version, modelled on AWS Secrets Manager's
// AWSCURRENT / AWSPREVIOUS / AWSPENDING. Each stage labels at most one version.
type Stage string

// The stages. Moving Current moves Previous to the version that was current.
const (
	StageCurrent  Stage = "current"
	StagePrevious Stage = "previous"
	StagePending  Stage = "pending"
)

// Stages lists every stage in display order.
var Stages = []Stage{StageCurrent, StagePrevious, StagePending}

// ParseStage validates a stage name.
func ParseStage(s string) (Stage, error) {
	for _, st := range Stages {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("%w: unknown stage %q (want current, previous or pending)", ErrInvalidArgument, s)
}

// Limits on a secret's metadata and values.
const (
	MaxValueSize       = 1 << 20 // 1 MiB
	MaxTags            = 64
	MaxCustom          = 64
	MaxLabelKeyLen     = 128
	MaxTagValueLen     = 256
	MaxCustomValueLen  = 1024
	MaxDescriptionLen  = 4096
	MaxOwnerLen        = 256
	MaxVersionsLimit   = 1000
	DefaultMaxVersions = 10
)

// Metadata describes a secret. It is never encrypted, so it must not hold
// secret material; lint policies can read all of it.
type Metadata struct {
	Owner          string            `json:"owner,omitempty"`
	Description    string            `json:"description,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	Custom         map[string]string `json:"custom,omitempty"`
	RotationPeriod Duration          `json:"rotation_period,omitempty"`
	// MaxVersions bounds how many versions are kept; 0 means DefaultMaxVersions.
	// Staged versions are never pruned, so a secret may briefly hold more.
	MaxVersions int `json:"max_versions,omitempty"`
	// Rotation is how the secret is rotated; nil when it is not.
	Rotation *Rotation `json:"rotation,omitempty"`
	// RotationStatus is the last or running rotation, kept by the engine.
	RotationStatus *RotationStatus `json:"rotation_status,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	CreatedBy      string          `json:"created_by"`
	UpdatedAt      time.Time       `json:"updated_at"`
	UpdatedBy      string          `json:"updated_by"`
}

// VersionState is the lifecycle state of one version.
type VersionState string

// Version states: a deleted version can be undeleted; a destroyed one's
// ciphertext is gone for good.
const (
	StateActive    VersionState = "active"
	StateDeleted   VersionState = "deleted"
	StateDestroyed VersionState = "destroyed"
)

// VersionInfo describes one version without its value.
type VersionInfo struct {
	Version   int          `json:"version"`
	CreatedAt time.Time    `json:"created_at"`
	CreatedBy string       `json:"created_by"`
	State     VersionState `json:"state"`
	Stages    []Stage      `json:"stages,omitempty"`
	// Fingerprint is the keyed HMAC of the value (hex): safe to log and to
	// compare, useless for recovering the value without the detection key.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// HasStage reports whether v carries stage s.
func (v VersionInfo) HasStage(s Stage) bool {
	for _, st := range v.Stages {
		if st == s {
			return true
		}
	}
	return false
}

// Secret is a secret's metadata and its versions, oldest first.
type Secret struct {
	Path     string        `json:"path"`
	Metadata Metadata      `json:"metadata"`
	Versions []VersionInfo `json:"versions"`
	// CurrentVersion is the version labelled current, 0 if none.
	CurrentVersion int `json:"current_version"`
}

// Selector picks one version of a secret: by number, by stage, or (zero
// value) the current one. Setting both is an error.
type Selector struct {
	Version int
	Stage   Stage
}

// String renders the selector for messages: "current", "v3", "stage pending".
func (s Selector) String() string {
	switch {
	case s.Version > 0:
		return fmt.Sprintf("v%d", s.Version)
	case s.Stage != "":
		return string(s.Stage)
	default:
		return string(StageCurrent)
	}
}

// PutOptions control a write.
type PutOptions struct {
	// CAS, when non-nil, makes the write conditional: it succeeds only if the
	// current version number equals *CAS (0: the secret must not exist yet).
	CAS *int
	// Stage is the stage the new version gets: current (default) or pending.
	// A pending version does not move current; rotation uses it.
	Stage Stage
	// Metadata, when non-nil, is applied in the same transaction as the
	// write, to a new or an existing secret.
	Metadata *MetadataUpdate
}

// MetadataUpdate changes the fields that are non-nil.
type MetadataUpdate struct {
	Owner          *string           `json:"owner,omitempty"`
	Description    *string           `json:"description,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	Custom         map[string]string `json:"custom,omitempty"`
	RotationPeriod *Duration         `json:"rotation_period,omitempty"`
	MaxVersions    *int              `json:"max_versions,omitempty"`
	// Rotation sets the rotation spec; one with an empty Connection
	// removes it.
	Rotation *Rotation `json:"rotation,omitempty"`
	// RotationStatus replaces the rotation status (the engine's record).
	RotationStatus *RotationStatus `json:"rotation_status,omitempty"`
	// ReplaceTags / ReplaceCustom replace the maps instead of merging;
	// merging deletes keys whose new value is "".
	ReplaceTags   bool `json:"replace_tags,omitempty"`
	ReplaceCustom bool `json:"replace_custom,omitempty"`
	// Create makes the update create a secret that does not exist yet,
	// with no version: a stub whose metadata and rotation are managed
	// (by Terraform, say) while its value is put by someone else.
	Create bool `json:"create,omitempty"`
}

// SetsPlainFields reports whether u changes anything but the rotation
// settings and status: the fields plain write covers.
func (u MetadataUpdate) SetsPlainFields() bool {
	return u.Owner != nil || u.Description != nil || u.Tags != nil || u.Custom != nil ||
		u.MaxVersions != nil || u.ReplaceTags || u.ReplaceCustom
}

// ListOptions select and paginate a listing.
type ListOptions struct {
	// Prefix is a plain string prefix of the path ("prod/" or "prod/db").
	Prefix string
	// After is the cursor from the previous page: the last path it returned.
	After string
	// Limit is the page size; 0 means DefaultListLimit, at most MaxListLimit.
	Limit int
	// WithMetadata fills ListEntry.Metadata, so a caller that needs every
	// secret's metadata (a plan of a manifest) makes one call per page
	// instead of one per secret.
	WithMetadata bool
}

// Listing limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// ListEntry is one secret in a listing.
type ListEntry struct {
	Path           string    `json:"path"`
	CurrentVersion int       `json:"current_version"`
	Versions       int       `json:"versions"`
	Owner          string    `json:"owner,omitempty"`
	UpdatedAt      time.Time `json:"updated_at"`
	// Metadata is set when ListOptions.WithMetadata asked for it.
	Metadata *Metadata `json:"metadata,omitempty"`
}

// ListPage is one page of a listing, sorted by path.
type ListPage struct {
	Entries []ListEntry `json:"entries"`
	// Next is the cursor for the following page; "" on the last page.
	Next string `json:"next,omitempty"`
}

// FingerprintMatch is a managed secret version whose value has a given
// fingerprint. Stages lists its stage labels; none means an older version.
type FingerprintMatch struct {
	Path    string       `json:"path"`
	Version int          `json:"version"`
	Stages  []Stage      `json:"stages,omitempty"`
	State   VersionState `json:"state"`
}
