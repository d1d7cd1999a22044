package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/passman-dev/passman/generator"
	"github.com/passman-dev/passman/secret"
)

// parseYAML parses data into a node tree: exactly one document, no
// aliases or anchors, at most MaxDepth levels. Decoding into yaml.Node
// keeps aliases unexpanded, and refusing them here means nothing later
// can expand one (a "billion laughs" bomb costs its own size, no more).
func parseYAML(name string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: name, Line: 1, Column: 1, Msg: msgNoSecrets}}
		}
		return nil, Errors{yamlError(name, data, err)}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, Errors{{File: name, Line: next.Line, Column: next.Column, Msg: "a second YAML document; a manifest is one document (remove the '---' separator)"}}
	case !errors.Is(err, io.EOF):
		return nil, Errors{yamlError(name, data, err)}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{File: name, Line: max(doc.Line, 1), Column: max(doc.Column, 1), Msg: msgNoSecrets}}
	}
	if n := doc.Content[0]; isNull(n) {
		return nil, Errors{{File: name, Line: n.Line, Column: n.Column, Msg: msgNoSecrets}}
	}
	root := doc.Content[0]
	if e := checkTree(name, root); e != nil {
		return nil, Errors{e}
	}
	return root, nil
}

// checkTree refuses aliases, anchors and deep nesting, walking the tree
// without recursion and without following alias pointers.
func checkTree(name string, root *yaml.Node) *Error {
	type item struct {
		n     *yaml.Node
		depth int
	}
	stack := []item{{root, 1}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := it.n
		if n.Kind == yaml.AliasNode || n.Anchor != "" {
			return &Error{File: name, Line: n.Line, Column: n.Column, Msg: "aliases (*name) and anchors (&name) are not allowed in a manifest"}
		}
		if it.depth > MaxDepth {
			return &Error{File: name, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf("nested more than %d levels deep", MaxDepth)}
		}
		for i := len(n.Content) - 1; i >= 0; i-- {
			stack = append(stack, item{n.Content[i], it.depth + 1})
		}
	}
	return nil
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// decoder turns the node tree into a Manifest, collecting every problem
// with its position.
type decoder struct{ collector }

func (d *decoder) fail(n *yaml.Node, format string, args ...any) {
	d.add(n.Line, n.Column, fmt.Sprintf(format, args...))
}

// fields walks a mapping, calling the handler of each known key and
// reporting unknown and repeated keys. It returns false if n is not a
// mapping.
func (d *decoder) fields(n *yaml.Node, what string, handlers map[string]func(k, v *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		d.fail(n, "%s: want a mapping, got %s", what, kindName(n))
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			d.fail(k, "%s: field names must be strings, got %s", what, kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k, "%s: field %s repeated (first at line %d)", what, quoteKey(k.Value), first)
			continue
		}
		seen[k.Value] = k.Line
		h, ok := handlers[k.Value]
		if !ok {
			names := make([]string, 0, len(handlers))
			for name := range handlers {
				names = append(names, name)
			}
			slices.Sort(names)
			d.fail(k, "%s: unknown field %s (want %s)", what, quoteKey(k.Value), strings.Join(names, ", "))
			continue
		}
		h(k, v)
	}
	return true
}

// quoteKey quotes a field name for a message, shortened: an unknown key
// could be anything pasted into the file.
func quoteKey(k string) string {
	if r := []rune(k); len(r) > 40 {
		k = string(r[:40]) + "…"
	}
	return fmt.Sprintf("%q", k)
}

func (d *decoder) manifest(root *yaml.Node) *Manifest {
	m := &Manifest{}
	var secretsKey, secretsNode *yaml.Node
	ok := d.fields(root, "manifest", map[string]func(k, v *yaml.Node){
		"secrets": func(k, v *yaml.Node) { secretsKey, secretsNode = k, v; m.Secrets = d.secrets(v) },
		"policies": func(_, v *yaml.Node) {
			if s, ok := d.str(v, "policies"); ok {
				if s == "" {
					d.fail(v, "policies: empty; remove the field or name a directory")
				} else if msg := checkPolicies(s); msg != "" {
					d.fail(v, "policies: %s", msg)
				}
				m.Policies = s
			}
		},
	})
	switch {
	case !ok:
	case secretsNode == nil:
		d.fail(root, msgNoSecrets)
	case secretsNode.Kind == yaml.SequenceNode && len(secretsNode.Content) == 0:
		d.fail(secretsKey, msgNoSecrets)
	}
	return m
}

func (d *decoder) secrets(n *yaml.Node) []Secret {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, "secrets: want a list, got %s", kindName(n))
		return nil
	}
	out := make([]Secret, 0, len(n.Content))
	first := make(map[string]int, len(n.Content))
	for _, item := range n.Content {
		s, pathNode := d.secret(item)
		if pathNode != nil {
			if line, dup := first[s.Path]; dup {
				d.fail(pathNode, "duplicate secret path %s (first declared at line %d)", s.Path, line)
			} else {
				first[s.Path] = item.Line
			}
		}
		out = append(out, s)
	}
	return out
}

// secret decodes one list item. It returns the path's node if the path
// is valid, for the duplicate check.
func (d *decoder) secret(n *yaml.Node) (Secret, *yaml.Node) {
	s := Secret{Line: n.Line, Column: n.Column}
	var pathNode, staticNode *yaml.Node
	ok := d.fields(n, "secret", map[string]func(k, v *yaml.Node){
		"path": func(_, v *yaml.Node) {
			// Never echo a path: what was typed may be a pasted value.
			if v.Kind != yaml.ScalarNode || !isString(v) {
				d.fail(v, "path: want a string, got %s", kindName(v))
			} else if err := secret.ValidatePath(v.Value); err != nil {
				d.fail(v, "path: %s", err)
			} else {
				s.Path, pathNode = v.Value, v
			}
		},
		"owner":       func(_, v *yaml.Node) { s.Owner = d.text(v, "owner", secret.MaxOwnerLen, false) },
		"description": func(_, v *yaml.Node) { s.Description = d.text(v, "description", secret.MaxDescriptionLen, true) },
		"tags":        func(_, v *yaml.Node) { s.Tags = d.tags(v) },
		"generate":    func(_, v *yaml.Node) { s.Generate = d.generate(v) },
		"static": func(_, v *yaml.Node) {
			staticNode = v
			if b, ok := d.boolean(v, "static"); ok {
				if !b {
					d.fail(v, "static: only true is allowed; remove the field, or declare generate")
				}
				s.Static = b
			}
		},
		"value": func(_, v *yaml.Node) {
			// Accepted so that lint can report it; the text goes no further.
			if v.Kind != yaml.ScalarNode {
				d.fail(v, "value: want a string, got %s", kindName(v))
			}
			v.Value = ""
			s.HasValue = true
		},
		"rotation": func(k, v *yaml.Node) { s.Rotation = d.rotation(k, v) },
	})
	if !ok {
		return s, nil
	}
	if !d.has(n, "path") {
		d.fail(n, "secret: missing path")
	}
	switch c := btoi(s.Generate != nil) + btoi(s.Static || staticNode != nil) + btoi(s.HasValue); {
	case c == 0:
		d.fail(n, msgDeclare)
	case c > 1:
		d.fail(n, msgOnlyOne)
	}
	return s, pathNode
}

// has reports whether mapping n has key name.
func (d *decoder) has(n *yaml.Node, name string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == name {
			return true
		}
	}
	return false
}

func (d *decoder) tags(n *yaml.Node) map[string]string {
	if n.Kind != yaml.MappingNode {
		d.fail(n, "tags: want a mapping of names to strings, got %s", kindName(n))
		return nil
	}
	if len(n.Content)/2 > secret.MaxTags {
		d.fail(n, "tags: %d tags, at most %d allowed", len(n.Content)/2, secret.MaxTags)
	}
	out := make(map[string]string, len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			d.fail(k, "tags: tag names must be strings, got %s", kindName(k))
			continue
		}
		if msg := checkTagKey(k.Value); msg != "" {
			d.fail(k, "tags: %s", msg)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k, "tags: tag %s repeated (first at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		if val, ok := d.str(v, "tags."+k.Value); ok {
			if msg := checkTagValue(val); msg != "" {
				d.fail(v, "tags.%s: %s", k.Value, msg)
			}
			out[k.Value] = val
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (d *decoder) generate(n *yaml.Node) *generator.Spec {
	var spec generator.Spec
	ok := d.fields(n, "generate", map[string]func(k, v *yaml.Node){
		"length": func(_, v *yaml.Node) {
			l, ok := intValue(v)
			switch {
			case !ok:
				d.fail(v, "generate.length: want an integer, got %s", kindName(v))
			case l < generator.MinLength || l > generator.MaxLength:
				d.fail(v, "generate.length: %d out of range %d..%d", l, generator.MinLength, generator.MaxLength)
			default:
				spec.Length = int(l)
			}
		},
		"classes": func(_, v *yaml.Node) { spec.Classes = d.classes(v) },
	})
	if !ok {
		return &spec
	}
	norm, err := spec.Normalize()
	if err != nil {
		d.fail(n, "generate: %s", trimSentinel(err))
		return &spec
	}
	return &norm
}

func (d *decoder) classes(n *yaml.Node) []generator.Class {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, "generate.classes: want a list, got %s", kindName(n))
		return nil
	}
	var out []generator.Class
	for _, c := range n.Content {
		s, ok := d.str(c, "generate.classes")
		if !ok {
			continue
		}
		cl := generator.Class(s)
		switch {
		case !slices.Contains(generator.AllClasses, cl):
			d.fail(c, "generate.classes: unknown class %s (want upper, lower, digits or symbols)", quoteKey(s))
		case slices.Contains(out, cl):
			d.fail(c, "generate.classes: %s listed twice", s)
		default:
			out = append(out, cl)
		}
	}
	return out
}

func (d *decoder) rotation(key, n *yaml.Node) *Rotation {
	r := &Rotation{}
	var paramsKey *yaml.Node
	hasPeriod := false
	ok := d.fields(n, "rotation", map[string]func(k, v *yaml.Node){
		"period": func(_, v *yaml.Node) {
			hasPeriod = true
			s, ok := d.str(v, "rotation.period")
			if !ok {
				return
			}
			p, err := secret.ParseDuration(s)
			switch {
			case err != nil:
				d.fail(v, "rotation.period: %s", trimSentinel(err))
			case p <= 0:
				d.fail(v, "rotation.period: must be a positive duration such as 720h or 30d")
			default:
				r.Period = p
			}
		},
		"connection": func(_, v *yaml.Node) {
			if s, ok := d.str(v, "rotation.connection"); ok {
				if msg := checkConnection(s); msg != "" {
					d.fail(v, "rotation.connection: %s", msg)
				}
				r.Connection = s
			}
		},
		"params": func(k, v *yaml.Node) {
			paramsKey = k
			if v.Kind != yaml.MappingNode {
				d.fail(v, "rotation.params: want a mapping, got %s", kindName(v))
				return
			}
			if c, ok := d.value(v, "rotation.params").(map[string]any); ok {
				r.Params = c
			}
		},
		// The spec's form before connections: say where it went rather
		// than "unknown field".
		"connector": func(k, _ *yaml.Node) {
			d.fail(k, "rotation.connector: a secret names a connection now (rotation.connection); the connector and its config belong to the connection, which an administrator defines (docs/rotation.md)")
		},
		"config": func(k, _ *yaml.Node) {
			d.fail(k, "rotation.config: a secret's per-secret settings are rotation.params now; credentials, URLs and programs belong to the connection (docs/rotation.md)")
		},
	})
	if ok && !hasPeriod {
		d.fail(key, "rotation: missing period (such as 720h or 30d)")
	}
	if paramsKey != nil && r.Connection == "" && !d.has(n, "connection") {
		d.fail(paramsKey, "rotation.params: needs a connection")
	}
	return r
}
