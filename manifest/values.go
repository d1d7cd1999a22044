package manifest

import (
	"fmt"
	"math"
	"strconv"

	"gopkg.in/yaml.v3"
)

// isString reports whether a scalar reads as a string. A timestamp-like
// plain scalar (2024-01-01) is one too: editors' YAML 1.2 parsers and the
// JSON Schema see it as a string, so the decoder does as well.
func isString(n *yaml.Node) bool {
	switch n.ShortTag() {
	case "!!str", "!!timestamp":
		return true
	}
	return false
}

// str returns n's text if it is a string scalar, reporting a type error
// (which never quotes the text) otherwise.
func (d *decoder) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || !isString(n) {
		d.fail(n, "%s: want a string, got %s", field, kindName(n))
		return "", false
	}
	return n.Value, true
}

// text returns a free-text field, checked against the store's limits.
func (d *decoder) text(n *yaml.Node, field string, maxLen int, multiline bool) string {
	s, ok := d.str(n, field)
	if !ok {
		return ""
	}
	if msg := checkText(s, maxLen, multiline); msg != "" {
		d.fail(n, "%s: %s", field, msg)
	}
	return s
}

func (d *decoder) boolean(n *yaml.Node, field string) (bool, bool) {
	b, ok := boolValue(n)
	if !ok {
		d.fail(n, "%s: want true or false, got %s", field, kindName(n))
	}
	return b, ok
}

// intValue and boolValue read a scalar of that YAML type. Plain text goes
// through strconv first: Node.Decode builds a decoder per call, which a
// 10,000-secret manifest (or a long list in a config) pays for each one.
func intValue(n *yaml.Node) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return 0, false
	}
	if i, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
		return i, true
	}
	var i int64
	return i, n.Decode(&i) == nil
}

func boolValue(n *yaml.Node) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		return false, false
	}
	if b, err := strconv.ParseBool(n.Value); err == nil {
		return b, true
	}
	var b bool
	return b, n.Decode(&b) == nil
}

// value converts free-form YAML (a connector's config) into JSON-shaped Go
// values: map[string]any, []any, string, int64, float64, bool, nil.
// checkTree has already bounded the depth and refused aliases.
func (d *decoder) value(n *yaml.Node, field string) any {
	switch n.Kind {
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
				d.fail(k, "%s: keys must be strings, got %s", field, kindName(k))
				continue
			}
			if _, dup := out[k.Value]; dup {
				d.fail(k, "%s: key %s repeated", field, quoteKey(k.Value))
				continue
			}
			out[k.Value] = d.value(v, field+"."+k.Value)
		}
		return out
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, c := range n.Content {
			out[i] = d.value(c, fmt.Sprintf("%s[%d]", field, i))
		}
		return out
	}
	switch n.ShortTag() {
	case "!!str", "!!timestamp", "!!binary":
		return n.Value
	case "!!null":
		return nil
	case "!!bool":
		if b, ok := boolValue(n); ok {
			return b
		}
	case "!!int":
		if i, ok := intValue(n); ok {
			return i
		}
		d.fail(n, "%s: integer out of range", field)
		return nil
	case "!!float":
		var f float64
		if n.Decode(&f) == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
		d.fail(n, "%s: numbers must be finite", field)
		return nil
	}
	d.fail(n, "%s: unsupported value (%s)", field, kindName(n))
	return nil
}

// kindName describes a node's type for messages, never its text.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.ShortTag() {
	case "!!str", "!!timestamp":
		return "a string"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	case "!!binary":
		return "binary data"
	case "!!merge":
		return "a merge key (<<)"
	}
	return "a value with a custom tag"
}
