package store

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/passman-dev/passman/secret"
)

// record is what s/<path> holds: everything about a secret except values.
type record struct {
	Meta     secret.Metadata      `json:"meta"`
	Versions []versionRecord      `json:"versions"` // ascending by N
	Stages   map[secret.Stage]int `json:"stages,omitempty"`
	// Last is the highest version number ever issued, so that numbers are
	// never reused after pruning or destroy.
	Last int `json:"last"`
}

type versionRecord struct {
	N           int                 `json:"n"`
	CreatedAt   time.Time           `json:"created_at"`
	CreatedBy   string              `json:"created_by"`
	State       secret.VersionState `json:"state"`
	Fingerprint string              `json:"fp,omitempty"`
	// AltFingerprint is the fingerprint of the value without its trailing
	// line ending, and AltTrim how many bytes that ending had. A value put
	// with "echo … |" ends in a newline that a leaked copy (a .env line, a
	// URL) does not carry; indexing both keeps such secrets recognisable.
	AltFingerprint string `json:"afp,omitempty"`
	AltTrim        int    `json:"atrim,omitempty"`
}

func decodeRecord(path string, b []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: record of %s: %v", secret.ErrCorrupt, path, err)
	}
	return &r, nil
}

func (r *record) encode() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return b, nil
}

func (r *record) version(n int) *versionRecord {
	i, ok := slices.BinarySearchFunc(r.Versions, n, func(v versionRecord, n int) int { return v.N - n })
	if !ok {
		return nil
	}
	return &r.Versions[i]
}

func (r *record) stagesOf(n int) []secret.Stage {
	var out []secret.Stage
	for _, st := range secret.Stages {
		if r.Stages[st] == n && n != 0 {
			out = append(out, st)
		}
	}
	return out
}

func (r *record) setStage(st secret.Stage, n int) {
	if r.Stages == nil {
		r.Stages = map[secret.Stage]int{}
	}
	if n == 0 {
		delete(r.Stages, st)
		return
	}
	r.Stages[st] = n
}

// moveCurrent labels version n current, moving previous to the old current
// version as AWS Secrets Manager does with AWSCURRENT and AWSPREVIOUS. A
// version promoted from pending loses that label.
func (r *record) moveCurrent(n int) {
	old := r.Stages[secret.StageCurrent]
	if old == n {
		return
	}
	if old != 0 {
		r.setStage(secret.StagePrevious, old)
	}
	if r.Stages[secret.StagePending] == n {
		r.setStage(secret.StagePending, 0)
	}
	if r.Stages[secret.StagePrevious] == n {
		r.setStage(secret.StagePrevious, 0)
	}
	r.setStage(secret.StageCurrent, n)
}

func (r *record) info(v *versionRecord) secret.VersionInfo {
	return secret.VersionInfo{Version: v.N, CreatedAt: v.CreatedAt, CreatedBy: v.CreatedBy, State: v.State, Stages: r.stagesOf(v.N), Fingerprint: v.Fingerprint}
}

func (r *record) secret(path string) secret.Secret {
	s := secret.Secret{Path: path, Metadata: r.Meta, CurrentVersion: r.Stages[secret.StageCurrent]}
	s.Versions = make([]secret.VersionInfo, len(r.Versions))
	for i := range r.Versions {
		s.Versions[i] = r.info(&r.Versions[i])
	}
	return s
}

func (r *record) maxVersions() int {
	if r.Meta.MaxVersions > 0 {
		return r.Meta.MaxVersions
	}
	return secret.DefaultMaxVersions
}

// applyMetadata applies u to m, validating every limit before changing
// anything, so a rejected update leaves m as it was.
func applyMetadata(m *secret.Metadata, u secret.MetadataUpdate) error {
	next := *m
	if u.Owner != nil {
		if err := checkText("owner", *u.Owner, secret.MaxOwnerLen, false); err != nil {
			return err
		}
		next.Owner = *u.Owner
	}
	if u.Description != nil {
		if err := checkText("description", *u.Description, secret.MaxDescriptionLen, true); err != nil {
			return err
		}
		next.Description = *u.Description
	}
	var err error
	if next.Tags, err = mergeLabels("tag", m.Tags, u.Tags, u.ReplaceTags, secret.MaxTags, secret.MaxTagValueLen); err != nil {
		return err
	}
	if next.Custom, err = mergeLabels("custom", m.Custom, u.Custom, u.ReplaceCustom, secret.MaxCustom, secret.MaxCustomValueLen); err != nil {
		return err
	}
	if u.RotationPeriod != nil {
		if *u.RotationPeriod < 0 {
			return fmt.Errorf("%w: rotation period must not be negative", secret.ErrInvalidArgument)
		}
		next.RotationPeriod = *u.RotationPeriod
	}
	if u.Rotation != nil {
		if u.Rotation.Connection == "" && !u.Rotation.Legacy() {
			next.Rotation = nil
		} else {
			if err := u.Rotation.Validate(); err != nil {
				return err
			}
			r := *u.Rotation
			r.Params = maps.Clone(r.Params)
			r.Classes = slices.Clone(r.Classes)
			next.Rotation = &r
		}
	}
	if u.RotationStatus != nil {
		st := *u.RotationStatus
		if len(st.Error) > secret.MaxDescriptionLen {
			st.Error = strings.ToValidUTF8(st.Error[:secret.MaxDescriptionLen], "")
		}
		next.RotationStatus = &st
	}
	if u.MaxVersions != nil {
		if *u.MaxVersions < 0 || *u.MaxVersions > secret.MaxVersionsLimit {
			return fmt.Errorf("%w: max versions %d out of range 0..%d", secret.ErrInvalidArgument, *u.MaxVersions, secret.MaxVersionsLimit)
		}
		next.MaxVersions = *u.MaxVersions
	}
	*m = next
	return nil
}

func mergeLabels(kind string, old, upd map[string]string, replace bool, maxN, maxVal int) (map[string]string, error) {
	if upd == nil && !replace {
		return old, nil
	}
	out := map[string]string{}
	if !replace {
		for k, v := range old {
			out[k] = v
		}
	}
	for k, v := range upd {
		if err := checkLabelKey(kind, k); err != nil {
			return nil, err
		}
		if v == "" {
			delete(out, k)
			continue
		}
		if err := checkText(kind+" "+k, v, maxVal, false); err != nil {
			return nil, err
		}
		out[k] = v
	}
	if len(out) > maxN {
		return nil, fmt.Errorf("%w: %d %s entries, at most %d allowed", secret.ErrInvalidArgument, len(out), kind, maxN)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func checkLabelKey(kind, k string) error {
	if k == "" || len(k) > secret.MaxLabelKeyLen {
		return fmt.Errorf("%w: %s key must be 1 to %d characters", secret.ErrInvalidArgument, kind, secret.MaxLabelKeyLen)
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/') {
			return fmt.Errorf("%w: %s key %q: allowed characters are A-Z a-z 0-9 . _ - /", secret.ErrInvalidArgument, kind, k)
		}
	}
	return nil
}

func checkText(field, v string, maxLen int, multiline bool) error {
	if len(v) > maxLen {
		return fmt.Errorf("%w: %s is %d bytes, at most %d allowed", secret.ErrInvalidArgument, field, len(v), maxLen)
	}
	for _, c := range v {
		if c == unicode.ReplacementChar {
			return fmt.Errorf("%w: %s is not valid UTF-8", secret.ErrInvalidArgument, field)
		}
		if unicode.IsControl(c) && !(multiline && (c == '\n' || c == '\t')) {
			return fmt.Errorf("%w: %s contains control character %U", secret.ErrInvalidArgument, field, c)
		}
	}
	return nil
}
