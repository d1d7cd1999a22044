package manifest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// Linter is what lint and apply need of the policy engine.
type Linter interface {
	Lint(ctx context.Context, in policy.LintInput) (policy.LintReport, error)
}

// LintInput is LintDocument typed for the policy engine.
func (m *Manifest) LintInput() (policy.LintInput, error) {
	var in policy.LintInput
	// The document is the published contract (lint.input.json); decoding
	// it keeps one definition of the shape rather than two.
	b, err := json.Marshal(m.LintDocument())
	if err != nil {
		return in, fmt.Errorf("encode lint input: %w", err)
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return in, fmt.Errorf("decode lint input: %w", err)
	}
	return in, nil
}

// Lint runs the lint decision over the manifest.
func Lint(ctx context.Context, lt Linter, m *Manifest) (policy.LintReport, error) {
	in, err := m.LintInput()
	if err != nil {
		return policy.LintReport{}, err
	}
	rep, err := lt.Lint(ctx, in)
	if err != nil {
		return rep, fmt.Errorf("lint %s: %w", m.File, err)
	}
	return rep, nil
}

// StoreLintInput describes every secret in the store as lint input (source
// "store"), from its metadata: what a store-wide compliance check sees.
func StoreLintInput(ctx context.Context, svc passman.Service) (policy.LintInput, error) {
	in := policy.LintInput{Source: policy.SourceStore, Secrets: []policy.LintSecret{}}
	all, err := listAll(ctx, svc)
	if err != nil {
		return in, err
	}
	for path, md := range all {
		s := policy.LintSecret{Path: path, Owner: md.Owner, Description: md.Description, Tags: md.Tags}
		if md.RotationPeriod > 0 || md.Rotation != nil && md.Rotation.Connection != "" {
			s.Rotation = &policy.LintRotation{}
			if md.RotationPeriod > 0 {
				s.Rotation.Period = md.RotationPeriod.String()
			}
			if md.Rotation != nil {
				s.Rotation.Connection = md.Rotation.Connection
			}
		}
		in.Secrets = append(in.Secrets, s)
	}
	slices.SortFunc(in.Secrets, func(a, b policy.LintSecret) int { return strings.Compare(a.Path, b.Path) })
	return in, nil
}

// CheckedApply lints the manifest and applies it only if no deny finding
// remains: a manifest that breaks policy changes nothing.
func CheckedApply(ctx context.Context, svc passman.Service, lt Linter, m *Manifest) (ApplyResult, policy.LintReport, error) {
	rep, err := Lint(ctx, lt, m)
	if err != nil {
		return ApplyResult{}, rep, err
	}
	if n := len(rep.Deny); n > 0 {
		return ApplyResult{}, rep, fmt.Errorf("%w: apply refused: policy lint has %d deny finding(s); run 'passman lint'", secret.ErrPrecondition, n)
	}
	res, err := Apply(ctx, svc, m)
	return res, rep, err
}
