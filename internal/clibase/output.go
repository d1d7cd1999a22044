package clibase

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// OutputFormat names a way of rendering a command's result on stdout.
type OutputFormat string

// The output formats.
const (
	FormatText OutputFormat = "text"
	FormatJSON OutputFormat = "json"
)

// OutputFormats is the one registry of formats: -o validation and the
// flag's help text both come from it, so adding a format is one line here
// plus its case in printer.emit.
func OutputFormats() []OutputFormat { return []OutputFormat{FormatText, FormatJSON} }

func FormatNames() string {
	names := make([]string, 0, len(OutputFormats()))
	for _, f := range OutputFormats() {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}

// AnnotationFormats lists, comma-separated, the report formats a command
// writes itself (scan's sarif, github, junit): -o takes them there as
// --format does.
const AnnotationFormats = "passman/formats"

func ParseFormat(s string, extra string) (OutputFormat, error) {
	for _, f := range OutputFormats() {
		if string(f) == s {
			return f, nil
		}
	}
	if extra != "" && slices.Contains(strings.Split(extra, ","), s) {
		return OutputFormat(s), nil
	}
	want := FormatNames()
	if extra != "" {
		want = strings.ReplaceAll(extra, ",", ", ")
	}
	return "", UsageErrorf("unknown output format %q (want one of: %s)", s, want)
}

// Printer renders results in the chosen format. Nothing here ever sees a
// secret value except through secret get, which formats it itself.
type Printer struct {
	Format OutputFormat
	W      io.Writer
}

// Emit writes v as JSON, or calls text to write the human form.
func (p Printer) Emit(v any, text func(w io.Writer) error) error {
	var err error
	switch p.Format {
	case FormatJSON:
		enc := json.NewEncoder(p.W)
		enc.SetIndent("", "  ")
		// Paths and messages are shown as typed: "<" is not HTML here.
		enc.SetEscapeHTML(false)
		err = enc.Encode(v)
	default:
		err = text(p.W)
	}
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
