package policy

import (
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/passman-dev/passman/secret"
)

// authzValue builds the authz input document directly as an OPA value.
// rego.EvalInput would marshal the struct to JSON and parse it back, which
// is a third of a decision's allocations (measured with BenchmarkAuthorize);
// authorization is on every request's path. The document equals the JSON
// encoding field for field, omitempty included; TestAuthzValueMatchesJSON
// holds the two together.
func authzValue(in AuthzInput) (ast.Value, error) {
	subject := ast.NewObject(
		ast.Item(key("id"), ast.StringTerm(in.Subject.ID)),
		ast.Item(key("kind"), ast.StringTerm(in.Subject.Kind)),
	)
	if len(in.Subject.Claims) > 0 {
		claims, err := ast.InterfaceToValue(in.Subject.Claims)
		if err != nil {
			return nil, fmt.Errorf("%w: subject claims: %w", secret.ErrInvalidArgument, err)
		}
		subject.Insert(key("claims"), ast.NewTerm(claims))
	}
	doc := ast.NewObject(
		ast.Item(key("subject"), ast.NewTerm(subject)),
		ast.Item(key("action"), ast.StringTerm(in.Action)),
		ast.Item(key("store"), ast.ObjectTerm(ast.Item(key("created_by"), ast.StringTerm(in.Store.CreatedBy)))),
		ast.Item(key("time"), timeTerm(in.Time)),
	)
	if in.Path != "" {
		doc.Insert(key("path"), ast.StringTerm(in.Path))
	}
	if in.Secret != nil {
		doc.Insert(key("secret"), ast.NewTerm(metadataValue(in.Secret)))
	}
	if in.Request != nil {
		// Rare (metadata-changing writes only), so the generic conversion
		// through JSON is fine here.
		v, err := ast.InterfaceToValue(in.Request)
		if err != nil {
			return nil, fmt.Errorf("%w: request: %w", secret.ErrInvalidArgument, err)
		}
		doc.Insert(key("request"), ast.NewTerm(v))
	}
	return doc, nil
}

// metadataValue is secret.Metadata as its MarshalJSON would write it.
func metadataValue(m *secret.Metadata) ast.Object {
	o := ast.NewObject()
	optional := func(name, v string) {
		if v != "" {
			o.Insert(key(name), ast.StringTerm(v))
		}
	}
	labels := func(name string, v map[string]string) {
		if len(v) > 0 {
			o.Insert(key(name), ast.NewTerm(ast.MapToObject(v, nil, ast.StringTerm)))
		}
	}
	optional("owner", m.Owner)
	optional("description", m.Description)
	labels("tags", m.Tags)
	labels("custom", m.Custom)
	if m.RotationPeriod != 0 {
		o.Insert(key("rotation_period"), ast.StringTerm(time.Duration(m.RotationPeriod).String()))
	}
	if m.MaxVersions != 0 {
		o.Insert(key("max_versions"), ast.IntNumberTerm(m.MaxVersions))
	}
	// The rotation spec and record are rare and nested: converted
	// through their JSON encoding, as MarshalJSON would write them.
	if m.Rotation != nil {
		if v, err := ast.InterfaceToValue(m.Rotation); err == nil {
			o.Insert(key("rotation"), ast.NewTerm(v))
		}
	}
	if m.RotationStatus != nil {
		if v, err := ast.InterfaceToValue(m.RotationStatus); err == nil {
			o.Insert(key("rotation_status"), ast.NewTerm(v))
		}
	}
	o.Insert(key("created_at"), timeTerm(m.CreatedAt))
	o.Insert(key("created_by"), ast.StringTerm(m.CreatedBy))
	o.Insert(key("updated_at"), timeTerm(m.UpdatedAt))
	o.Insert(key("updated_by"), ast.StringTerm(m.UpdatedBy))
	return o
}

// inputKeys are the key terms of the input documents, built once so that
// building a document allocates only its values. Read-only: evaluation
// never modifies input terms.
var inputKeys = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, k := range []string{"action", "claims", "created_at", "created_by", "custom", "description", "id", "kind", "max_versions", "owner", "path", "request", "rotation", "rotation_period", "rotation_status", "secret", "store", "subject", "tags", "time", "updated_at", "updated_by"} {
		m[k] = ast.StringTerm(k)
	}
	return m
}()

// key returns the term of a document key.
func key(name string) *ast.Term {
	if t, ok := inputKeys[name]; ok {
		return t
	}
	return ast.StringTerm(name)
}

// timeTerm formats t as time.Time.MarshalJSON does.
func timeTerm(t time.Time) *ast.Term { return ast.StringTerm(t.Format(time.RFC3339Nano)) }
