package manifest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/secret"
)

// ChangeKind says what a plan would do, or could not do, about a path.
type ChangeKind string

// The kinds of change.
const (
	// KindCreate: declared, not in the store; apply generates a value.
	KindCreate ChangeKind = "create"
	// KindUpdate: declared and stored, with different metadata.
	KindUpdate ChangeKind = "update"
	// KindMissingStatic: a static secret not in the store. Apply cannot
	// invent its value; someone must put it.
	KindMissingStatic ChangeKind = "missing-static"
	// KindDrift: in the store, not declared. Apply never deletes it.
	KindDrift ChangeKind = "drift"
)

// The metadata fields a manifest manages. Custom metadata and max
// versions are left as they are.
const (
	FieldOwner          = "owner"
	FieldDescription    = "description"
	FieldTags           = "tags"
	FieldRotationPeriod = "rotation_period"
	FieldRotation       = "rotation"
)

// FieldChange is one metadata field's old and new rendering. Tags render
// as sorted "k=v,k2=v2"; a rotation period as Go duration text.
type FieldChange struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// Change is what the plan holds for one path. It never holds a value.
type Change struct {
	Kind   ChangeKind    `json:"kind"`
	Path   string        `json:"path"`
	Fields []FieldChange `json:"fields,omitempty"`
	// Line is the secret's line in the manifest; 0 for drift.
	Line int `json:"line,omitempty"`
}

// Plan is the difference between a manifest and a store, sorted by path.
type Plan struct {
	Changes []Change `json:"changes"`
}

// HasChanges reports whether the store differs from the manifest in any
// way, drift and missing static values included (they need a person even
// though apply leaves them alone).
func (p *Plan) HasChanges() bool { return len(p.Changes) > 0 }

// Count returns how many changes are of kind k.
func (p *Plan) Count(k ChangeKind) int {
	n := 0
	for _, c := range p.Changes {
		if c.Kind == k {
			n++
		}
	}
	return n
}

// MakePlan compares m with the store behind svc. It reads all metadata
// with paginated List calls (one audit entry per page of
// secret.MaxListLimit, not one per secret). A manifest with a value:
// field, or one that fails Validate, is refused with Errors.
func MakePlan(ctx context.Context, svc passman.Service, m *Manifest) (*Plan, error) {
	if err := m.checkApplicable(); err != nil {
		return nil, err
	}
	current, err := listAll(ctx, svc)
	if err != nil {
		return nil, err
	}
	return diff(m, current), nil
}

// listAll returns every secret's metadata by path.
func listAll(ctx context.Context, svc passman.Service) (map[string]*secret.Metadata, error) {
	out := map[string]*secret.Metadata{}
	after := ""
	for {
		page, err := svc.List(ctx, secret.ListOptions{After: after, Limit: secret.MaxListLimit, WithMetadata: true})
		if err != nil {
			return nil, fmt.Errorf("plan: list store: %w", err)
		}
		for _, e := range page.Entries {
			if e.Metadata == nil {
				return nil, fmt.Errorf("%w: plan: the store listed %s without metadata; the server may predate manifests", secret.ErrPrecondition, e.Path)
			}
			out[e.Path] = e.Metadata
		}
		if page.Next == "" {
			return out, nil
		}
		if page.Next <= after || len(page.Entries) == 0 {
			return nil, fmt.Errorf("%w: plan: list cursor did not advance past %s", secret.ErrCorrupt, after)
		}
		after = page.Next
	}
}

func diff(m *Manifest, current map[string]*secret.Metadata) *Plan {
	p := &Plan{Changes: []Change{}}
	declared := make(map[string]bool, len(m.Secrets))
	for i := range m.Secrets {
		s := &m.Secrets[i]
		declared[s.Path] = true
		md, ok := current[s.Path]
		switch {
		case ok:
			if f := fieldChanges(md, s); len(f) > 0 {
				p.Changes = append(p.Changes, Change{Kind: KindUpdate, Path: s.Path, Fields: f, Line: s.Line})
			}
		case s.Static:
			p.Changes = append(p.Changes, Change{Kind: KindMissingStatic, Path: s.Path, Line: s.Line})
		default:
			p.Changes = append(p.Changes, Change{Kind: KindCreate, Path: s.Path, Fields: fieldChanges(&secret.Metadata{}, s), Line: s.Line})
		}
	}
	for path := range current {
		if !declared[path] {
			p.Changes = append(p.Changes, Change{Kind: KindDrift, Path: path})
		}
	}
	slices.SortFunc(p.Changes, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return p
}

// fieldChanges lists the managed fields where md differs from s, in a
// fixed order.
func fieldChanges(md *secret.Metadata, s *Secret) []FieldChange {
	var out []FieldChange
	add := func(field, from, to string) {
		if from != to {
			out = append(out, FieldChange{Field: field, From: from, To: to})
		}
	}
	add(FieldOwner, md.Owner, s.Owner)
	add(FieldDescription, md.Description, s.Description)
	add(FieldTags, renderTags(md.Tags), renderTags(s.Tags))
	add(FieldRotationPeriod, md.RotationPeriod.String(), s.period().String())
	add(FieldRotation, renderRotation(md.Rotation), renderRotation(s.rotationSpec()))
	return out
}

// rotationSpec is the rotation spec the store keeps for s: connection,
// params (scalars as strings), the generator's length and classes; nil
// without a connection.
func (s *Secret) rotationSpec() *secret.Rotation {
	if s.Rotation == nil || s.Rotation.Connection == "" {
		return nil
	}
	r := &secret.Rotation{Connection: s.Rotation.Connection}
	for k, v := range s.Rotation.Params {
		if r.Params == nil {
			r.Params = map[string]string{}
		}
		r.Params[k] = configString(v)
	}
	if g := s.Generate; g != nil {
		r.Length = g.Length
		for _, c := range g.Classes {
			r.Classes = append(r.Classes, string(c))
		}
	}
	return r
}

// configString stores a param value as a string: strings as they are,
// numbers, booleans, lists and maps as JSON (a connector parses them).
func configString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// renderRotation renders a spec for plans: connection, sorted params,
// generator; "" for none. A spec from before connections renders as such,
// so a plan shows it being replaced.
func renderRotation(r *secret.Rotation) string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	if r.Legacy() {
		fmt.Fprintf(&b, "legacy connector %s (not run until migrated)", r.LegacyConnector)
		return b.String()
	}
	b.WriteString(r.Connection)
	for _, k := range slices.Sorted(maps.Keys(r.Params)) {
		fmt.Fprintf(&b, " %s=%s", k, r.Params[k])
	}
	if r.Length > 0 {
		fmt.Fprintf(&b, " length=%d", r.Length)
	}
	if len(r.Classes) > 0 {
		fmt.Fprintf(&b, " classes=%s", strings.Join(r.Classes, ","))
	}
	if r.GracePeriod > 0 {
		fmt.Fprintf(&b, " grace=%s", r.GracePeriod)
	}
	return b.String()
}

func (s *Secret) period() secret.Duration {
	if s.Rotation == nil {
		return 0
	}
	return s.Rotation.Period
}

// renderTags renders tags as "k=v,k2=v2", sorted by key.
func renderTags(tags map[string]string) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(tags)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(tags[k])
	}
	return b.String()
}

// update is the metadata update that makes a secret's managed fields
// what s declares: the manifest is the whole truth for them, so an
// omitted owner, description, tag set or rotation clears the stored one.
// The rotation settings are sent only when they change (fields lists the
// plan's changes; nil: a new secret), since changing them is an action of
// its own: a team allowed to write its secrets' descriptions need not be
// allowed to configure their rotation.
func (s *Secret) update(fields []FieldChange) *secret.MetadataUpdate {
	owner, desc := s.Owner, s.Description
	tags := maps.Clone(s.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	u := &secret.MetadataUpdate{Owner: &owner, Description: &desc, Tags: tags, ReplaceTags: true}
	changed := func(f string) bool {
		return fields == nil || slices.ContainsFunc(fields, func(c FieldChange) bool { return c.Field == f })
	}
	if period := s.period(); changed(FieldRotationPeriod) && (fields != nil || period != 0) {
		u.RotationPeriod = &period
	}
	if rot := s.rotationSpec(); changed(FieldRotation) && (fields != nil || rot != nil) {
		if rot == nil {
			rot = &secret.Rotation{} // no connection: clears the stored spec
		}
		u.Rotation = rot
	}
	return u
}
