package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/passman-dev/passman/secret"
)

// outputFormat names a way of rendering a command's result on stdout.
type outputFormat string

// The output formats.
const (
	formatText outputFormat = "text"
	formatJSON outputFormat = "json"
)

// outputFormats is the one registry of formats: -o validation and the
// flag's help text both come from it, so adding a format is one line here
// plus its case in printer.emit.
func outputFormats() []outputFormat { return []outputFormat{formatText, formatJSON} }

func formatNames() string {
	names := make([]string, 0, len(outputFormats()))
	for _, f := range outputFormats() {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}

// annotationFormats lists, comma-separated, the report formats a command
// writes itself (scan's sarif, github, junit): -o takes them there as
// --format does.
const annotationFormats = "passman/formats"

func parseFormat(s string, extra string) (outputFormat, error) {
	for _, f := range outputFormats() {
		if string(f) == s {
			return f, nil
		}
	}
	if extra != "" && slices.Contains(strings.Split(extra, ","), s) {
		return outputFormat(s), nil
	}
	want := formatNames()
	if extra != "" {
		want = strings.ReplaceAll(extra, ",", ", ")
	}
	return "", usageErrorf("unknown output format %q (want one of: %s)", s, want)
}

// printer renders results in the chosen format. Nothing here ever sees a
// secret value except through secret get, which formats it itself.
type printer struct {
	format outputFormat
	w      io.Writer
}

// emit writes v as JSON, or calls text to write the human form.
func (p printer) emit(v any, text func(w io.Writer) error) error {
	var err error
	switch p.format {
	case formatJSON:
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		// Paths and messages are shown as typed: "<" is not HTML here.
		enc.SetEscapeHTML(false)
		err = enc.Encode(v)
	default:
		err = text(p.w)
	}
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// table writes aligned columns. Callers write rows with tab-separated
// cells and call flush.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			c = "-"
		}
		if i > 0 {
			_, _ = io.WriteString(t.tw, "\t")
		}
		// A tab or newline inside a cell (from a description, say) would
		// break the alignment; show it escaped instead.
		_, _ = io.WriteString(t.tw, strings.NewReplacer("\t", `\t`, "\n", `\n`).Replace(c))
	}
	_, _ = io.WriteString(t.tw, "\n")
}

// flush writes the table; write errors surface here.
func (t *table) flush() error { return t.tw.Flush() }

// timeText renders a time for tables: UTC, second precision, "-" for zero.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// shownPath is a path as error messages show it: only a valid one. What was
// typed where a path belongs may be a value pasted in the wrong place.
func shownPath(p string) string {
	if secret.ValidatePath(p) != nil {
		return "<invalid path>"
	}
	return p
}
