package manifest

import (
	"context"
	"fmt"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/generator"
	"github.com/passman-dev/passman/secret"
)

// ApplyResult reports what Apply did. It never holds a value.
type ApplyResult struct {
	// Created and Updated are paths, in plan order.
	Created []string `json:"created"`
	Updated []string `json:"updated"`
	// Skipped are the changes apply does not make: missing static values
	// (it does not invent them) and drift (it does not delete).
	Skipped []Change `json:"skipped"`
}

// Apply makes the store match m: it creates missing generated secrets (a
// fresh value from generator.Generate, written with CAS 0 and the metadata
// in the same transaction) and updates differing metadata. It plans
// afresh, so a second Apply changes nothing. m is validated in full before
// the first write; if a write fails, Apply returns what it did so far with
// the error.
func Apply(ctx context.Context, svc passman.Service, m *Manifest) (ApplyResult, error) {
	res := ApplyResult{Created: []string{}, Updated: []string{}, Skipped: []Change{}}
	plan, err := MakePlan(ctx, svc, m)
	if err != nil {
		return res, err
	}
	byPath := make(map[string]*Secret, len(m.Secrets))
	for i := range m.Secrets {
		byPath[m.Secrets[i].Path] = &m.Secrets[i]
	}
	for _, c := range plan.Changes {
		if c.Kind != KindCreate && c.Kind != KindUpdate {
			res.Skipped = append(res.Skipped, c)
		}
	}
	for _, c := range plan.Changes {
		s := byPath[c.Path]
		switch c.Kind {
		case KindCreate:
			if err := create(ctx, svc, s); err != nil {
				return res, err
			}
			res.Created = append(res.Created, c.Path)
		case KindUpdate:
			if _, err := svc.UpdateMetadata(ctx, c.Path, *s.update(c.Fields)); err != nil {
				return res, fmt.Errorf("apply: update %s metadata: %w", c.Path, err)
			}
			res.Updated = append(res.Updated, c.Path)
		}
	}
	return res, nil
}

// create writes a new generated secret, only if it does not exist yet.
func create(ctx context.Context, svc passman.Service, s *Secret) error {
	zero := 0
	if _, err := generator.Put(ctx, svc, s.Path, *s.Generate, secret.PutOptions{CAS: &zero, Metadata: s.update(nil)}); err != nil {
		return fmt.Errorf("apply: create %s: %w", s.Path, err)
	}
	return nil
}
