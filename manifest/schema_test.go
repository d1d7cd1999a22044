package manifest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/passman-dev/passman/manifest"
)

// compileSchema compiles manifest.Schema() as an editor would.
func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(manifest.Schema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("passman.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("passman.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

var errNotJSON = errors.New("not convertible to JSON")

// yamlToJSON converts a manifest to the JSON instance a YAML-aware editor
// validates (YAML 1.2 core schema: timestamps are strings; later keys win).
func yamlToJSON(data []byte) (any, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil || len(doc.Content) == 0 {
		return nil, errNotJSON
	}
	var extra yaml.Node
	if dec.Decode(&extra) == nil {
		return nil, errNotJSON
	}
	v, err := nodeJSON(doc.Content[0])
	if err != nil {
		return nil, err
	}
	// Round-trip through encoding/json, so numbers are what the validator
	// expects of a JSON document.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errNotJSON
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

func nodeJSON(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.AliasNode:
		return nil, errNotJSON
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := nodeJSON(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			out[n.Content[i].Value] = v
		}
		return out, nil
	case yaml.SequenceNode:
		out := []any{}
		for _, c := range n.Content {
			v, err := nodeJSON(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		return b, n.Decode(&b)
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return json.Number(n.Value), nil
		}
		return i, nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, errNotJSON
		}
		if _, err := json.Marshal(f); err != nil {
			return nil, errNotJSON // .inf, .nan
		}
		return f, nil
	}
	return n.Value, nil
}

// TestSchemaAgreesWithDecoder walks testdata/parse: the schema accepts
// every good manifest and rejects or accepts each bad one as its
// "schema:" line says (accept: a rule JSON Schema cannot express).
func TestSchemaAgreesWithDecoder(t *testing.T) {
	t.Parallel()
	sch := compileSchema(t)
	for _, c := range loadCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			inst, err := yamlToJSON(c.data)
			if c.schema == "skip" {
				if err == nil {
					t.Errorf("case converts to JSON; give it schema: accept or reject")
				}
				return
			}
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			verr := sch.Validate(inst)
			switch c.schema {
			case "accept":
				if verr != nil {
					t.Errorf("schema rejects it: %v", verr)
				}
			case "reject":
				if verr == nil {
					t.Errorf("schema accepts it; the decoder says: %v", c.errors)
				}
			default:
				t.Fatalf("bad schema: line %q", c.schema)
			}
		})
	}
}

// TestSchemaFile keeps the published file well-formed and its
// examples honest.
func TestSchemaFile(t *testing.T) {
	t.Parallel()
	onDisk, err := os.ReadFile(filepath.Join("schema", "passman.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, manifest.Schema()) {
		t.Fatal("Schema() differs from schema/passman.schema.json")
	}
	var v map[string]any
	if err := json.Unmarshal(onDisk, &v); err != nil {
		t.Fatal(err)
	}
	if v["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", v["$schema"])
	}
	sch := compileSchema(t)
	for i, tc := range []struct {
		doc  string
		want bool
	}{
		{`{"secrets":[{"path":"a","static":true}]}`, true},
		{`{"secrets":[{"path":"a","static":true,"extra":1}]}`, false},
		{`{"secrets":[{"path":"a","generate":{"length":"32"}}]}`, false},
		{`{"secrets":[{"path":"a","static":true,"tags":["x"]}]}`, false},
		{`{"secrets":[{"path":"a/./b","static":true}]}`, false},
		{`{"secrets":[{"path":"a","static":true,"rotation":{"period":"90d"}}]}`, true},
		{`{"secrets":[{"path":"a","static":true,"rotation":{"period":"1h30m","config":{}}}]}`, false},
	} {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(tc.doc)))
		if err != nil {
			t.Fatal(err)
		}
		if got := sch.Validate(inst) == nil; got != tc.want {
			t.Errorf("%d: %s: valid = %v, want %v", i, tc.doc, got, tc.want)
		}
	}
}

// schemaAccepts reports whether the schema accepts data (false, nil if
// data does not convert to JSON).
func schemaAccepts(sch *jsonschema.Schema, data []byte) (bool, error) {
	inst, err := yamlToJSON(data)
	if err != nil {
		return false, err
	}
	if err := sch.Validate(inst); err != nil {
		return false, fmt.Errorf("%v (instance %s)", err, strconv.Quote(fmt.Sprint(reflect.ValueOf(inst))))
	}
	return true, nil
}

// TestLintDocumentMatchesPolicyInput validates LintDocument of every good
// manifest against the lint input schema that package policy publishes,
// so the two packages cannot drift apart silently.
func TestLintDocumentMatchesPolicyInput(t *testing.T) {
	t.Parallel()
	// A missing schema file fails: this test exists to stop drift.
	raw, err := os.ReadFile(filepath.Join("..", "policy", "schema", "lint.input.json"))
	if err != nil {
		t.Fatalf("the policy lint input schema: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("lint.input.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("lint.input.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range loadCases(t) {
		if len(tc.errors) > 0 {
			continue
		}
		m, err := manifest.Parse("passman.yaml", tc.data)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(m.LintDocument())
		if err != nil {
			t.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("%s: lint document does not match the policy input schema: %v\n%s", tc.name, err, b)
		}
	}
}
