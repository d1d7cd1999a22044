package manifest

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/passman-dev/passman/secret"
)

// Error is one problem in a manifest at a 1-based line and column. It
// wraps secret.ErrInvalidArgument. Its message never quotes a value, nor
// a path that failed validation (it may be a value pasted in the wrong
// place).
type Error struct {
	File         string
	Line, Column int
	Msg          string
}

// Error renders "file:line:col: message".
func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Unwrap classifies every manifest problem as an invalid argument.
func (e *Error) Unwrap() error { return secret.ErrInvalidArgument }

// Errors is every problem found in a manifest (up to a limit), in file
// order. errors.Is(err, secret.ErrInvalidArgument) holds for it.
type Errors []*Error

// Error renders one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Messages shared by the decoder and Validate.
const (
	msgNoSecrets = "no secrets: declare at least one under secrets:"
	msgDeclare   = "declare generate or static"
	msgOnlyOne   = "declare only one of generate, static and value"
)

// collector gathers problems and sorts them into file order.
type collector struct {
	file string
	errs Errors
	more bool
}

func (c *collector) add(line, col int, msg string) {
	if len(c.errs) >= maxErrors {
		c.more = true
		return
	}
	c.errs = append(c.errs, &Error{File: c.file, Line: line, Column: col, Msg: msg})
}

func (c *collector) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(c.errs, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	if c.more {
		last := c.errs[len(c.errs)-1]
		c.errs = append(c.errs, &Error{File: c.file, Line: last.Line, Column: last.Column, Msg: "too many errors"})
	}
	return c.errs
}

// scanBytes rejects what YAML forbids anyway (invalid UTF-8, control
// characters other than tab and line breaks, NUL included) with an exact
// position, which yaml.v3's reader errors lack.
func scanBytes(name string, data []byte) *Error {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			return &Error{File: name, Line: line, Column: col, Msg: "invalid UTF-8; a manifest is UTF-8 text"}
		case r == '\n':
			line, col = line+1, 0
		case r == '\t' || r == '\r':
		case unicode.IsControl(r):
			return &Error{File: name, Line: line, Column: col, Msg: fmt.Sprintf("control character %U is not allowed in a manifest", r)}
		}
		i += n
		col++
	}
	return nil
}

// yamlLineRE is compiled on first use, not at every passman command's
// start-up.
var yamlLineRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })

// parserProblems are yaml.v3's parser (not scanner) errors, with a hint
// naming the construct that the reported line starts. yaml.v3 reports
// their line 0-based (its scanner errors are 1-based).
var parserProblems = map[string]string{
	"did not find expected ',' or ']'":       " (in the [ ] list that starts on this line)",
	"did not find expected ',' or '}'":       " (in the { } mapping that starts on this line)",
	"did not find expected key":              " (in the mapping that starts on this line; check the indentation)",
	"did not find expected '-' indicator":    " (in the list that starts on this line; check the indentation)",
	"did not find expected node content":     "",
	"did not find expected <document start>": "",
	"did not find expected <stream-start>":   "",
	"found undefined tag handle":             "",
	"found duplicate %YAML directive":        "",
	"found incompatible YAML document":       "",
	"found duplicate %TAG directive":         "",
}

// yamlError turns a yaml.v3 syntax error into an Error. yaml.v3 reports
// a line (sometimes none: line 1) but no column, so the column is that of
// the line's first non-blank character. A tab in the indentation, the
// commonest cause, is pointed at exactly. yaml.v3's messages quote no
// input except an unknown anchor's name, which is replaced.
func yamlError(name string, data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE().FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if strings.HasPrefix(msg, "unknown anchor") {
		// The alias's position is not in the message: find it.
		l, c := findAlias(data)
		return &Error{File: name, Line: l, Column: c, Msg: "aliases (*name) and anchors (&name) are not allowed in a manifest"}
	}
	if l, c, ok := findTabIndent(data, strings.Contains(msg, "tab")); ok {
		return &Error{File: name, Line: l, Column: c, Msg: "tab character in indentation; YAML indents with spaces only (" + msg + ")"}
	}
	if hint, ok := parserProblems[msg]; ok {
		line++
		msg += hint
	}
	line = max(line, 1)
	return &Error{File: name, Line: line, Column: firstNonBlank(data, line), Msg: "yaml: " + msg}
}

// lines splits data into lines without their terminators.
func lines(data []byte) [][]byte { return bytes.Split(data, []byte("\n")) }

// findTabIndent finds the first line that starts with a tab or, if
// anywhere is true, whose indentation holds one after spaces (legal in a
// block scalar's text, so only when yaml.v3 complained of a tab). It
// returns the tab's position.
func findTabIndent(data []byte, anywhere bool) (line, col int, ok bool) {
	for i, l := range lines(data) {
		if !anywhere && (len(l) == 0 || l[0] != '\t') {
			continue
		}
		for j, c := range l {
			if c == '\t' {
				return i + 1, j + 1, true
			}
			if c != ' ' {
				break
			}
		}
	}
	return 0, 0, false
}

func firstNonBlank(data []byte, line int) int {
	ls := lines(data)
	if line > len(ls) {
		return 1
	}
	col := 1
	for _, r := range string(ls[line-1]) {
		if r != ' ' && r != '\t' {
			return col
		}
		col++
	}
	return 1
}

// findAlias returns the position of the first "*" that starts a YAML
// alias token (at the start of a value or after a flow indicator).
func findAlias(data []byte) (line, col int) {
	for i, l := range lines(data) {
		s := string(l)
		c := 1
		prev := ' '
		for _, r := range s {
			if r == '*' && strings.ContainsRune(" \t[{,:-?", prev) {
				return i + 1, c
			}
			if r == '#' && (prev == ' ' || c == 1) {
				break
			}
			prev = r
			c++
		}
	}
	return 1, 1
}
