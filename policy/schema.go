package policy

import (
	"embed"
	"fmt"
	"slices"

	"github.com/passman-dev/passman/secret"
)

//go:embed schema/*.input.json
var schemaFS embed.FS

// Schema returns the JSON Schema (draft 2020-12) of a decision's input
// document, as published in policy/schema/<decision>.input.json. Each one
// carries a documented example under "examples".
func Schema(decision string) ([]byte, error) {
	if !slices.Contains(Decisions, decision) {
		return nil, fmt.Errorf("%w: unknown decision %q (want one of %v)", secret.ErrInvalidArgument, decision, Decisions)
	}
	b, err := schemaFS.ReadFile("schema/" + decision + ".input.json")
	if err != nil {
		return nil, fmt.Errorf("read %s input schema: %w", decision, err)
	}
	return b, nil
}
