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
		ids     []string
	}{
		{"repository", "false\n", 0, true, false, nil},
		{"shallow", "true\n", 0, true, true, nil},
		{"with ids", "false\n" + id1 + "\n" + id2 + "\n", 2, true, false, []string{id1, id2}},
		{"empty", "", 0, false, false, nil},
		{"no final newline", "false", 0, false, false, nil},
		{"a path too", ".git\nfalse\n", 0, false, false, nil},
		{"missing id", "false\n" + id1 + "\n", 2, false, false, nil},
		{"extra line", "false\n" + id1 + "\n" + id1 + "\n^" + id1 + "\n", 2, false, false, nil},
		{"exclusion, not an id", "false\n" + id1 + "\n^" + id1 + "\n", 2, false, false, nil},
		{"short id", "false\n" + id1[:12] + "\n" + id1 + "\n", 2, false, false, nil},
		{"upper-case id", "false\n" + strings.ToUpper(id1) + "\n" + id1 + "\n", 2, false, false, nil},
		{"odd shallow answer", "maybe\n", 0, false, false, nil},
		{"empty answer", "\n", 0, false, false, nil},
		{"CRLF", "false\r\n", 0, false, false, nil},
		{"NUL in id", "false\n" + id1[:39] + "\x00\n" + id1 + "\n", 2, false, false, nil},
		{"oversized", strings.Repeat("x", 1<<20) + "\n", 0, false, false, nil},
		{"many lines", strings.Repeat(id1+"\n", 10000), 2, false, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, ok := parseRevParse([]byte(tc.out), tc.n)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tc.ok, info)
			}
			if !ok {
				return
			}
			if info.shallow != tc.shallow || strings.Join(info.ids, ",") != strings.Join(tc.ids, ",") {
				t.Errorf("got %+v, want shallow %v, ids %v", info, tc.shallow, tc.ids)
			}
		})
	}
}

// TestParseRevList reads rev-list's commits, merges and boundary, and
// refuses lines that are not commit ids.
func TestParseRevList(t *testing.T) {
	a, b, c, d := strings.Repeat("a", 40), strings.Repeat("b", 40), strings.Repeat("c", 40), strings.Repeat("d", 40)
	order, merges, boundary, err := parseRevList([]byte("-" + a + " " + d + "\n" + b + " " + a + "\n\n" + c + " " + b + " " + d + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != b+","+c || len(merges) != 1 || !merges[c] || len(boundary) != 1 || !boundary[a] {
		t.Errorf("order %v, merges %v, boundary %v", order, merges, boundary)
	}
	if order, _, _, err := parseRevList(nil); err != nil || len(order) != 0 {
		t.Errorf("empty: %v, %v", order, err)
	}
	for name, out := range map[string]string{
		"not an id":       "HEAD\n",
		"short id":        a[:7] + "\n",
		"bad parent":      b + " " + a[:39] + "\n",
		"double dash":     "--" + a + "\n",
		"upper case":      strings.ToUpper(a) + "\n",
		"exclusion":       "^" + a + "\n",
		"NUL":             a[:39] + "\x00\n",
		"option":          "--all\n",
		"oversized field": strings.Repeat("a", 1<<20) + "\n",
	} {
		if _, _, _, err := parseRevList([]byte(out)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
