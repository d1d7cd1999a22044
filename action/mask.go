package action

import (
	"encoding/json"
	"slices"
	"strings"
)

// maskForms returns every string the runner must mask so that v never
// shows in a log, in the order they should be registered.
//
// The runner masks a registered string wherever it appears, but a
// multi-line value registered whole is not matched when one of its lines
// is printed alone (actions/runner#2232), and a JSON document's leaves are
// printed on their own by any step that parses it (vault-action,
// CVE-2021-32074). So: the whole value, each line, each line without its
// surrounding whitespace (the runner trims what it prints in some places),
// and, when v is JSON, each string and number leaf and their lines; each
// also JSON-escaped, as a step that logs JSON would print it. Blank forms
// are skipped: masking "" or spaces would mask nothing or everything.
func maskForms(v string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if strings.TrimSpace(s) == "" || seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
	}
	addText := func(s string) {
		forms := []string{s}
		for _, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
			forms = append(forms, line, strings.TrimSpace(line), strings.TrimRight(line, "\r"))
		}
		for _, f := range forms {
			add(f)
			if q, err := json.Marshal(f); err == nil {
				if inner := string(q[1 : len(q)-1]); inner != f {
					add(inner)
				}
			}
		}
	}
	addText(v)
	var doc any
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&doc); err == nil && !dec.More() {
		for _, leaf := range jsonLeaves(doc, 0) {
			addText(leaf)
		}
	}
	return out
}

// maxJSONDepth bounds the walk over a JSON value; the decoder has its own
// limit, this keeps the recursion small for a hostile document.
const maxJSONDepth = 64

// jsonLeaves lists the string and number leaves of a decoded JSON value
// (object keys are names, not secrets, and true/false/null are not
// masked: they would mask those words in every log line).
func jsonLeaves(v any, depth int) []string {
	if depth > maxJSONDepth {
		return nil
	}
	switch t := v.(type) {
	case string:
		return []string{t}
	case json.Number:
		return []string{t.String()}
	case []any:
		var out []string
		for _, e := range t {
			out = append(out, jsonLeaves(e, depth+1)...)
		}
		return out
	case map[string]any:
		var out []string
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = append(out, jsonLeaves(t[k], depth+1)...)
		}
		return out
	}
	return nil
}
