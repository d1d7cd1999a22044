package manifest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/passman-dev/passman/secret"
)

// PlanFormats lists the formats WritePlan accepts, for flag validation
// and help text.
func PlanFormats() []string { return []string{"text", "json"} }

// WritePlan writes p as "text" (terraform-like: + create, ~ update, !
// missing static value, ? drift, then a summary line) or "json" (the Plan
// struct). Text quotes every field value, so control characters in a
// description cannot rewrite the terminal.
func WritePlan(w io.Writer, format string, p *Plan) error {
	var err error
	switch format {
	case "text":
		err = writeText(w, p)
	case "json":
		out := *p
		if out.Changes == nil {
			out.Changes = []Change{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		err = enc.Encode(out)
	default:
		return fmt.Errorf("%w: unknown plan format %q (want text or json)", secret.ErrInvalidArgument, format)
	}
	if err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}

var symbols = map[ChangeKind]string{KindCreate: "+", KindUpdate: "~", KindMissingStatic: "!", KindDrift: "?"}

func writeText(w io.Writer, p *Plan) error {
	b := bufio.NewWriter(w)
	for _, c := range p.Changes {
		fmt.Fprintf(b, "%s %s", symbols[c.Kind], c.Path)
		switch c.Kind {
		case KindCreate:
			fmt.Fprintf(b, " (create, line %d)\n", c.Line)
		case KindUpdate:
			fmt.Fprintf(b, " (update, line %d)\n", c.Line)
		case KindMissingStatic:
			fmt.Fprintf(b, " (static value missing, line %d): put it with 'passman secret put %s'\n", c.Line, c.Path)
		case KindDrift:
			fmt.Fprintf(b, " (drift: in the store, not in the manifest; apply leaves it alone)\n")
		default:
			fmt.Fprintf(b, " (%s)\n", c.Kind)
		}
		for _, f := range c.Fields {
			if c.Kind == KindCreate {
				fmt.Fprintf(b, "    %s: %s\n", f.Field, strconv.Quote(f.To))
			} else {
				fmt.Fprintf(b, "    %s: %s → %s\n", f.Field, strconv.Quote(f.From), strconv.Quote(f.To))
			}
		}
	}
	if !p.HasChanges() {
		fmt.Fprintln(b, "No changes: the store matches the manifest.")
	} else {
		fmt.Fprintln(b)
	}
	fmt.Fprintf(b, "Plan: %d to create, %d to update, %d drifted, %d static values missing.\n",
		p.Count(KindCreate), p.Count(KindUpdate), p.Count(KindDrift), p.Count(KindMissingStatic))
	return b.Flush()
}
