package scanner

import (
	"strings"
	"testing"
)

// TestParseRevParse reads rev-parse's answers, and refuses anything that
// is not one line per question with commit ids where ids were asked for.
func TestParseRevParse(t *testing.T) {
	id1 := strings.Repeat("a", 40)
	id2 := strings.Repeat("0123456789abcdef", 4) // SHA-256
	for _, tc := range []struct {
		name    string
		out     string
		n       int
		ok      bool
		shallow bool
		path    string
		ids     []string
	}{
		{"repository", ".git\nfalse\n.git/shallow\n", 0, true, false, ".git/shallow", nil},
		{"shallow", "/r/.git\ntrue\n/r/.git/shallow\n", 0, true, true, "/r/.git/shallow", nil},
		{"with ids", ".git\nfalse\n.git/shallow\n" + id1 + "\n" + id2 + "\n", 2, true, false, ".git/shallow", []string{id1, id2}},
		{"path with a space", "/a b/.git\nfalse\n/a b/.git/shallow\n", 0, true, false, "/a b/.git/shallow", nil},
		{"empty", "", 0, false, false, "", nil},
		{"no final newline", ".git\nfalse\n.git/shallow", 0, false, false, "", nil},
		{"path with a newline", "/a\nb/.git\nfalse\n/a\nb/.git/shallow\n", 0, false, false, "", nil},
		{"missing id", ".git\nfalse\n.git/shallow\n" + id1 + "\n", 2, false, false, "", nil},
		{"extra line", ".git\nfalse\n.git/shallow\n" + id1 + "\n" + id1 + "\n^" + id1 + "\n", 2, false, false, "", nil},
		{"exclusion, not an id", ".git\nfalse\n.git/shallow\n" + id1 + "\n^" + id1 + "\n", 2, false, false, "", nil},
		{"short id", ".git\nfalse\n.git/shallow\n" + id1[:12] + "\n" + id1 + "\n", 2, false, false, "", nil},
		{"upper-case id", ".git\nfalse\n.git/shallow\n" + strings.ToUpper(id1) + "\n" + id1 + "\n", 2, false, false, "", nil},
		{"odd shallow answer", ".git\nmaybe\n.git/shallow\n", 0, false, false, "", nil},
		{"empty git dir", "\nfalse\n.git/shallow\n", 0, false, false, "", nil},
		{"empty shallow path", ".git\ntrue\n\n", 0, false, false, "", nil},
		{"CRLF", ".git\r\nfalse\r\n.git/shallow\r\n", 0, false, false, "", nil},
		{"NUL in id", ".git\nfalse\n.git/shallow\n" + id1[:39] + "\x00\n" + id1 + "\n", 2, false, false, "", nil},
		{"oversized", strings.Repeat("x", 1<<20) + "\nfalse\n.git/shallow\n", 0, true, false, ".git/shallow", nil},
		{"many lines", strings.Repeat(id1+"\n", 10000), 2, false, false, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, ok := parseRevParse([]byte(tc.out), tc.n)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tc.ok, info)
			}
			if !ok {
				return
			}
			if info.shallow != tc.shallow || info.shallowPath != tc.path || strings.Join(info.ids, ",") != strings.Join(tc.ids, ",") {
				t.Errorf("got %+v, want shallow %v, path %q, ids %v", info, tc.shallow, tc.path, tc.ids)
			}
		})
	}
}
