package manifest

import (
	_ "embed"
	"maps"
	"slices"
)

// LintDocument returns the manifest as policy lint input (the shape of
// policy/schema/lint.input.json), with JSON-shaped values (map[string]any,
// []any, string, int, bool):
//
//	{"source": "manifest", "secrets": [{"path", "owner", "description",
//	  "tags", "generate": {"length", "classes"}, "static", "value_present",
//	  "rotation": {"period", "connection"}, "line"}]}
//
// Empty fields are omitted. It holds no values (a value: field shows as
// value_present: true) and no rotation params.
func (m *Manifest) LintDocument() map[string]any {
	secrets := make([]any, 0, len(m.Secrets))
	for _, s := range m.Secrets {
		e := map[string]any{"path": s.Path, "line": s.Line}
		if s.Owner != "" {
			e["owner"] = s.Owner
		}
		if s.Description != "" {
			e["description"] = s.Description
		}
		if len(s.Tags) > 0 {
			tags := make(map[string]any, len(s.Tags))
			for _, k := range slices.Sorted(maps.Keys(s.Tags)) {
				tags[k] = s.Tags[k]
			}
			e["tags"] = tags
		}
		if g := s.Generate; g != nil {
			// Policy judges the value that would be generated, so the
			// defaults are filled in (Parse has done so already).
			spec := *g
			if norm, err := g.Normalize(); err == nil {
				spec = norm
			}
			classes := make([]any, len(spec.Classes))
			for i, c := range spec.Classes {
				classes[i] = string(c)
			}
			e["generate"] = map[string]any{"length": spec.Length, "classes": classes}
		}
		if s.Static {
			e["static"] = true
		}
		if s.HasValue {
			e["value_present"] = true
		}
		if r := s.Rotation; r != nil {
			rot := map[string]any{}
			if r.Period > 0 {
				rot["period"] = r.Period.String()
			}
			if r.Connection != "" {
				rot["connection"] = r.Connection
			}
			e["rotation"] = rot
		}
		secrets = append(secrets, e)
	}
	return map[string]any{"source": "manifest", "secrets": secrets}
}

//go:embed schema/passman.schema.json
var schema []byte

// Schema returns the JSON Schema (draft 2020-12) of passman.yaml, for
// editors ("# yaml-language-server: $schema=…") and CI. It agrees with
// Parse on every file under testdata/; Parse checks more (duplicate
// paths, byte lengths, positive periods).
func Schema() []byte { return slices.Clone(schema) }
