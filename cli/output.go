package cli

import (
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/passman-dev/passman/secret"
)

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
