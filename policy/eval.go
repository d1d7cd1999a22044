package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/passman-dev/passman/secret"
)

// Eval evaluates one decision ("authz", "lint" or "respond") for
// `passman policy eval`. input is decoded into the decision's input type
// (unknown fields are errors), so the result is exactly what Authorize,
// Lint or Respond would return: a Decision, LintReport or Response. With
// explain, Explanation holds OPA's trace with file:line locations.
func (e *Engine) Eval(ctx context.Context, decision string, input any, explain bool) (EvalResult, error) {
	set := e.set.Load()
	var opts []rego.EvalOption
	var trace *topdown.BufferTracer
	if explain {
		trace = topdown.NewBufferTracer()
		opts = append(opts, rego.EvalQueryTracer(trace))
	}
	var res EvalResult
	var err error
	switch decision {
	case DecisionAuthz:
		var in AuthzInput
		if err = decodeInput(input, &in); err == nil {
			res.Result, err = set.authorize(ctx, in, opts...)
		}
	case DecisionLint:
		var in LintInput
		if err = decodeInput(input, &in); err == nil {
			res.Result, err = set.lint(ctx, in, opts...)
		}
	case DecisionRespond:
		var in RespondInput
		if err = decodeInput(input, &in); err == nil {
			res.Result, err = set.respond(ctx, in, opts...)
		}
	default:
		return EvalResult{}, fmt.Errorf("%w: unknown decision %q (want one of %v)", secret.ErrInvalidArgument, decision, Decisions)
	}
	if trace != nil {
		var buf bytes.Buffer
		topdown.PrettyTraceWithLocation(&buf, *trace)
		res.Explanation = strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	}
	if err != nil {
		// The trace is what explains a failure, so it is returned too.
		return res, fmt.Errorf("eval %s: %w", decision, err)
	}
	return res, nil
}

// decodeInput converts an arbitrary JSON-like value (or raw JSON bytes) into
// a typed input, refusing fields the schema does not know.
func decodeInput(input any, dst any) error {
	var raw []byte
	switch v := input.(type) {
	case []byte:
		raw = v
	case json.RawMessage:
		raw = v
	default:
		b, err := json.Marshal(input)
		if err != nil {
			return fmt.Errorf("%w: encode input: %w", secret.ErrInvalidArgument, err)
		}
		raw = b
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("%w: input: %w", secret.ErrInvalidArgument, err)
	}
	return nil
}
