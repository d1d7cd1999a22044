package scanner

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// parseLog parses r and returns every commit emitted.
func parseLog(p *logParser) ([]*commitDiff, error) {
	var out []*commitDiff
	err := p.parse(func(c *commitDiff) error {
		out = append(out, c)
		return nil
	})
	return out, err
}

// smallParser reads through a 16-byte buffer (bufio's minimum), so that
// short lines take the long-line path of next.
func smallParser(r io.Reader, maxLine int) *logParser {
	return &logParser{r: bufio.NewReaderSize(r, 16), maxLine: maxLine}
}

func add(path string, line int, raw string) addition {
	return addition{Path: path, StartLine: line, Raw: []byte(raw)}
}

// hdr is a logFormat commit header line.
func hdr(sha, parents string) string {
	return "\x00" + sha + "\x00" + parents + "\x00Ada Author\x00ada@example.com\x002023-11-15T00:13:20+02:00\n"
}

var (
	sha1 = strings.Repeat("1", 40)
	sha2 = strings.Repeat("2", 40)
	sha3 = strings.Repeat("3", 40)
	sha4 = strings.Repeat("4", 40)
)

func commit(sha string, parents int, adds ...addition) *commitDiff {
	return &commitDiff{SHA: sha, Author: "Ada Author", Email: "ada@example.com", Date: "2023-11-14T22:13:20Z", Parents: parents, Adds: adds}
}

// TestLogParserHistory parses real `git log` output (see
// testdata/gitlog/gen.sh): a root commit, edits, a binary file, quoted
// names, CRLF, a missing final newline, a rename, a deletion, a merge with
// lines of its own and an octopus merge.
func TestLogParserHistory(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/gitlog/history.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := parseLog(newLogParser(f, DefaultMaxFileSize))
	if err != nil {
		t.Fatal(err)
	}
	// n is the commit's date: n minutes after the first.
	at := func(sha string, parents, n int, adds ...addition) *commitDiff {
		return &commitDiff{SHA: sha, Author: "Ada Author", Email: "ada@example.com",
			Date: time.Unix(1700000000+60*int64(n), 0).UTC().Format(time.RFC3339), Parents: parents, Adds: adds}
	}
	// added marks a file new in its commit ("new file mode").
	added := func(a addition) addition { a.New = true; return a }
	root := at("d3f5f56c4657d1cdcf0b96d170a544cbf84744f7", 1, 0,
		added(add("a.txt", 1, "alpha\nbeta\ngamma\n")),
		added(add("nonl.txt", 1, "no newline")))
	root.Binary = 1
	edits := at("a1d3ca0e3d1ebe90c7526f132e1b90ae6676695d", 1, 1,
		add("a.txt", 2, "BETA\n"),
		add("a.txt", 4, "delta\n"),
		added(add("café\"q\".txt", 1, "x\n")),
		added(add("crlf.txt", 1, "one\r\ntwo\r\n")),
		add("nonl.txt", 1, "no newline\nnow\n"),
		added(add("with space.txt", 1, "y\n")))
	edits.Binary = 1
	// A rename (detected: not new) and a deletion.
	renameDelete := at("bb4649ee8695a57bf68ff032140b4712e469ab95", 1, 2, add("renamed.txt", 5, "epsilon\n"))
	renameDelete.Deletes = true
	want := []*commitDiff{
		root,
		edits,
		renameDelete,
		at("02288eb830849feb2f0ffc227ded88cc9e9f0102", 1, 4, add("renamed.txt", 1, "main\n")),
		at("e4b03213f34b60ec70ac6425cc4eaa6a0b2ebe50", 1, 3, add("renamed.txt", 6, "side\n"), added(add("side.txt", 1, "side\n"))),
		at("0cb1447dc4ac38a9f709ec7263d7f1f7072773e9", 2, 5, added(add("evil.txt", 1, "only in the merge\n")), add("renamed.txt", 4, "merged in\n")),
		at("23e2875166e948907175b9cc1c92572b023b6d22", 1, 6, added(add("o1.txt", 1, "o1\n"))),
		at("08687753d60453ad114cdacbb8c395fc651563de", 1, 7, added(add("o2.txt", 1, "o2\n"))),
		at("8ec5a018da8808840de85c7ceaf4902d3099b5ad", 3, 8, added(add("octo.txt", 1, "octo\n"))),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("commits (-want +got):\n%s", diff)
	}
}

func TestLogParser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		maxLine int
		small   bool // read through a 16-byte buffer
		want    []*commitDiff
	}{
		{name: "empty", in: ""},
		{name: "header only", in: hdr(sha1, ""), want: []*commitDiff{commit(sha1, 1)}},
		{
			name: "git diff output has no header",
			in:   "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,0 +2,2 @@\n+x\n+y\n",
			want: []*commitDiff{{Parents: 1, Adds: []addition{add("f", 2, "x\ny\n")}}},
		},
		{
			name: "runs split by removed and context lines",
			in: hdr(sha1, sha2) + "\ndiff --git a/f b/f\nindex 1..2 100644\n--- a/f\n+++ b/f\n" +
				"@@ -3 +3,2 @@ func foo() +1\n-old\n+new\n+new2\n@@ -10,2 +11,0 @@\n-a\n-b\n@@ -20 +20,3 @@\n+p\n q\n+r\n",
			want: []*commitDiff{commit(sha1, 1, add("f", 3, "new\nnew2\n"), add("f", 20, "p\n"), add("f", 22, "r\n"))},
		},
		{
			name: "a second file and a second commit",
			in: hdr(sha1, "") + "\ndiff --git a/f b/f\n--- /dev/null\n+++ b/f\n@@ -0,0 +1 @@\n+one\n" +
				"diff --git a/g b/g\n--- /dev/null\n+++ b/g\n@@ -0,0 +1 @@\n+two\n" +
				hdr(sha2, sha1) + "\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,0 +2 @@\n+three\n",
			want: []*commitDiff{
				commit(sha1, 1, add("f", 1, "one\n"), add("g", 1, "two\n")),
				commit(sha2, 1, add("f", 2, "three\n")),
			},
		},
		{
			name: "combined diff: only lines new against every parent",
			in: hdr(sha3, sha1+" "+sha2) + "\ndiff --cc f\nindex 1,2..3\n--- a/f\n+++ b/f\n" +
				"@@@ -1,2 -1,2 +1,5 @@@\n +from second\n+ from first\n++evil\n++evil2\n--gone\n- gone1\n  same\n++evil3\n",
			want: []*commitDiff{commit(sha3, 2, add("f", 3, "evil\nevil2\n"), add("f", 6, "evil3\n"))},
		},
		{
			name: "octopus merge",
			in: hdr(sha4, sha1+" "+sha2+" "+sha3) + "\ndiff --cc f\n--- a/f\n+++ b/f\n" +
				"@@@@ -1 -1 -1 +1,4 @@@@\n+++new\n++ two\n + three\n+++ new with a space\n--- removed\n",
			want: []*commitDiff{commit(sha4, 3, add("f", 1, "new\n"), add("f", 4, " new with a space\n"))},
		},
		{
			name: "a normal diff after a combined one",
			in: hdr(sha3, sha1+" "+sha2) + "\ndiff --cc f\n--- a/f\n+++ b/f\n@@@ -1 -1 +1 @@@\n++m\n" +
				hdr(sha4, sha3) + "\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-m\n+n\n",
			want: []*commitDiff{commit(sha3, 2, add("f", 1, "m\n")), commit(sha4, 1, add("f", 1, "n\n"))},
		},
		{
			name: "no newline at end of file",
			in: hdr(sha1, "") + "\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1,2 @@\n-x\n\\ No newline at end of file\n+x\n+y\n\\ No newline at end of file\n" +
				"diff --git a/g b/g\n--- a/g\n+++ b/g\n@@ -1 +1 @@\n-x\n\\ No newline at end of file\n+z\n",
			want: []*commitDiff{commit(sha1, 1, add("f", 1, "x\ny"), add("g", 1, "z\n"))},
		},
		{
			name: "deleted file and unknown paths add nothing",
			in: hdr(sha1, "") + "\ndiff --git a/f b/f\n--- a/f\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n+odd\n" +
				"diff --git a/g b/g\n--- a/g\n+++ g\n@@ -0,0 +1 @@\n+no prefix\n" +
				"diff --git a/h b/h\n--- a/h\n+++ \"b/bad\\q\"\n@@ -0,0 +1 @@\n+bad quoting\n",
			want: []*commitDiff{commit(sha1, 1)},
		},
		{
			name: "quoted paths",
			in: hdr(sha1, "") + "\ndiff --git \"a/x\" \"b/x\"\n--- /dev/null\n+++ \"b/tab\\there \\\"q\\\" caf\\303\\251\\\\.txt\"\n@@ -0,0 +1 @@\n+1\n" +
				"diff --git a/with space b/with space\n--- /dev/null\n+++ b/with space\t\n@@ -0,0 +1 @@\n+2\n" +
				"diff --git a/b/b b/b/b\n--- /dev/null\n+++ b/b/b\n@@ -0,0 +1 @@\n+3\n",
			want: []*commitDiff{commit(sha1, 1, add("tab\there \"q\" café\\.txt", 1, "1\n"), add("with space", 1, "2\n"), add("b/b", 1, "3\n"))},
		},
		{
			name: "binary files, renames, mode changes",
			in: hdr(sha1, "") + "\ndiff --git a/x.bin b/x.bin\nnew file mode 100644\nindex 0..1\nBinary files /dev/null and b/x.bin differ\n" +
				"diff --git a/y.bin b/y.bin\nindex 1..2\nBinary files a/y.bin and b/y.bin differ\n" +
				"diff --git a/old b/new\nsimilarity index 100%\nrename from old\nrename to new\n" +
				"diff --git a/m b/m\nold mode 100644\nnew mode 100755\n" +
				"diff --git a/t b/t\n--- a/t\n+++ b/t\n@@ -1 +1 @@\n-Binary files are fine\n+Binary files a/t and b/t differ\n",
			want: []*commitDiff{{SHA: sha1, Author: "Ada Author", Email: "ada@example.com", Date: "2023-11-14T22:13:20Z", Parents: 1, Binary: 2,
				Adds: []addition{add("t", 1, "Binary files a/t and b/t differ\n")}}},
		},
		{
			name: "a NUL byte in an added line makes the file binary in this commit",
			in: hdr(sha1, "") + "\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -0,0 +1 @@\n+text\n@@ -5 +6 @@\n-x\n+bin\x00ary\n@@ -9 +10 @@\n+more\n" +
				"diff --git a/g b/g\n--- a/g\n+++ b/g\n@@ -1 +1 @@\n-\x00removed\n+fine\n",
			want: []*commitDiff{{SHA: sha1, Author: "Ada Author", Email: "ada@example.com", Date: "2023-11-14T22:13:20Z", Parents: 1, Binary: 1,
				Adds: []addition{add("g", 1, "fine\n")}}},
		},
		{
			name: "diff lines that look like headers",
			in:   hdr(sha1, "") + "\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,4 @@\n---- a/x\n-+++ b/y\n++++ b/z\n+diff --git a/q b/q\n+@@ -1 +1 @@\n+\\ No newline\n",
			want: []*commitDiff{commit(sha1, 1, add("f", 1, "+++ b/z\ndiff --git a/q b/q\n@@ -1 +1 @@\n\\ No newline\n"))},
		},
		{
			name: "CRLF and empty added lines",
			in:   hdr(sha1, "") + "\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -0,0 +1,3 @@\n+a\r\n+\n+\r\n",
			want: []*commitDiff{commit(sha1, 1, add("f", 1, "a\r\n\n\r\n"))},
		},
		{
			name: "no final newline in the output",
			in:   hdr(sha1, "") + "\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -0,0 +1 @@\n+last",
			want: []*commitDiff{commit(sha1, 1, add("f", 1, "last\n"))},
		},
		{
			name: "a hunk of an empty result range starts at line 1",
			in:   hdr(sha1, "") + "\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +0,0 @@\n-x\n@@ -0,0 +0,1 @@\n+y\n",
			want: []*commitDiff{commit(sha1, 1, add("f", 1, "y\n"))},
		},
		{
			name:    "a run over maxLine skips the rest of its file",
			maxLine: 10,
			in: hdr(sha1, "") + "\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -0,0 +1,3 @@\n+12345\n+67890\n+x\n@@ -9 +10 @@\n+later\n" +
				"diff --git a/g b/g\n--- a/g\n+++ b/g\n@@ -0,0 +1 @@\n+fine\n",
			want: []*commitDiff{{SHA: sha1, Author: "Ada Author", Email: "ada@example.com", Date: "2023-11-14T22:13:20Z", Parents: 1, Large: 1,
				Adds: []addition{add("g", 1, "fine\n")}}},
		},
		{
			name:    "lines longer than the read buffer",
			maxLine: 100, // the header line is 96 bytes
			small:   true,
			in: hdr(sha1, "") + "\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -0,0 +1,2 @@\n+" + strings.Repeat("a", 40) + "\n+" + strings.Repeat("b", 15) + "\n" +
				"diff --git a/g b/g\n--- a/g\n+++ b/g\n@@ -0,0 +1,2 @@\n+" + strings.Repeat("c", 150) + "\n+d\n" +
				"diff --git a/h b/h\n--- a/h\n+++ b/h\n@@ -0,0 +1 @@\n+" + strings.Repeat("e", 16),
			want: []*commitDiff{{SHA: sha1, Author: "Ada Author", Email: "ada@example.com", Date: "2023-11-14T22:13:20Z", Parents: 1, Large: 1,
				Adds: []addition{add("f", 1, strings.Repeat("a", 40)+"\n"+strings.Repeat("b", 15)+"\n"), add("h", 1, strings.Repeat("e", 16)+"\n")}}},
		},
		{
			name: "a header ends the previous commit's run",
			in:   hdr(sha1, "") + "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -0,0 +1 @@\n+a\n" + hdr(sha2, sha1) + "+b\n",
			want: []*commitDiff{commit(sha1, 1, add("f", 1, "a\n")), commit(sha2, 1)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			maxLine := tc.maxLine
			if maxLine == 0 {
				maxLine = DefaultMaxFileSize
			}
			for _, mode := range []string{"whole", "one byte at a time"} {
				var r io.Reader = strings.NewReader(tc.in)
				if mode != "whole" {
					r = iotest.OneByteReader(r)
				}
				p := newLogParser(r, maxLine)
				if tc.small {
					p = smallParser(r, maxLine)
				}
				got, err := parseLog(p)
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%s: commits (-want +got):\n%s", mode, diff)
				}
			}
		})
	}
}

func TestLogParserErrors(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"short commit id":        "\x00abc\x00\x00a\x00e\x00d\n",
		"too few header fields":  "\x00" + sha1 + "\x00\x00a\n",
		"too many header fields": hdr(sha1, "") + "\x00" + sha2 + "\x00\x00a\x00e\x00d\x00x\n",
		"hunk without +":         hdr(sha1, "") + "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 -1 @@\n",
		"hunk with a bad start":  hdr(sha1, "") + "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +x @@\n",
		"negative hunk start":    hdr(sha1, "") + "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +-3 @@\n",
		"hunk start overflows":   hdr(sha1, "") + "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +99999999999999999999 @@\n",
	} {
		if _, err := parseLog(newLogParser(strings.NewReader(in), 100)); err == nil {
			t.Errorf("%s: parse succeeded, want an error", name)
		}
	}

	// An emit error stops the parse and is returned.
	stop := errors.New("stop")
	in := hdr(sha1, "") + hdr(sha2, "") + hdr(sha3, "")
	n := 0
	err := newLogParser(strings.NewReader(in), 100).parse(func(*commitDiff) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("emit error: parse returned %v after %d commits, want stop after 1", err, n)
	}

	// A read error is returned, on both read paths.
	for _, small := range []bool{false, true} {
		r := io.MultiReader(strings.NewReader(hdr(sha1, "")+"diff --git a/f b/f\n+++ b/f\n@@ -0,0 +1 @@\n+"+strings.Repeat("x", 40)), iotest.ErrReader(io.ErrUnexpectedEOF))
		p := newLogParser(r, 100)
		if small {
			p = smallParser(r, 100)
		}
		if _, err := parseLog(p); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("read error (small buffer %v): parse returned %v, want io.ErrUnexpectedEOF", small, err)
		}
	}
}

func TestHunkStart(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{
		"@@ -1 +1 @@":                     1,
		"@@ -1,2 +3,4 @@":                 3,
		"@@ -0,0 +1 @@":                   1,
		"@@ -3 +0,0 @@":                   1,
		"@@ -5,0 +7,2 @@ func f() +9 +10": 7,
		"@@@ -1,2 -3 +40,5 @@@":           40,
		"@@@@ -1 -1 -1 +12 @@@@":          12,
	} {
		got, err := hunkStart([]byte(in))
		if err != nil || got != want {
			t.Errorf("hunkStart(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestDiffPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"b/f":                    "f",
		"b/dir/f.txt":            "dir/f.txt",
		"b/with space\t":         "with space",
		"b/b/f":                  "b/f",
		`"b/caf\303\251"`:        "café",
		`"b/tab\tquote\"back\\"`: "tab\tquote\"back\\",
		`"b/nl\nname"`:           "nl\nname",
		"/dev/null":              "",
		"f":                      "",
		"a/f":                    "",
		`"b/unterminated`:        "",
		`"b/bad\escape"`:         "",
		"":                       "",
		`"a/caf\303\251"`:        "",
		"b/":                     "",
	} {
		if got := diffPath(in); got != want {
			t.Errorf("diffPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// git ends a "+++" line with a tab when the name has a space, after the
// closing quote when the name is also quoted.
func TestDiffPathQuotedWithSpace(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"\"b/a b\\303\\251\"\t":                            "a bé",
		"\"b/sp ace\\ttab \\\"q\\\" caf\\303\\251.txt\"\t": "sp ace\ttab \"q\" café.txt",
	} {
		if got := diffPath(in); got != want {
			t.Errorf("diffPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// A removed line over the limit (and the read buffer) does not skip the
// file's added lines, nor move them.
func TestLogParserRemovedLongLine(t *testing.T) {
	t.Parallel()
	in := hdr(sha1, "") + "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -2 +2 @@\n-" + strings.Repeat("z", 200) + "\n+short\n"
	got, err := parseLog(smallParser(strings.NewReader(in), 100))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*commitDiff{commit(sha1, 1, add("f", 2, "short\n"))}, got); diff != "" {
		t.Errorf("commits (-want +got):\n%s", diff)
	}
}

// Line numbers cannot wrap around past math.MaxInt.
func TestLogParserLineNumberOverflow(t *testing.T) {
	t.Parallel()
	in := hdr(sha1, "") + "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +9223372036854775807 @@\n x\n+y\n"
	got, err := parseLog(newLogParser(strings.NewReader(in), 100))
	if err != nil {
		return // rejecting the header is a fix too
	}
	checkAdditions(t, got, len(in))
}

// A hunk header ends with a line of the file (git's function context):
// an error must not quote it.
func TestLogParserErrorQuotesContent(t *testing.T) {
	t.Parallel()
	content := "token = ghp_" + strings.Repeat("Ab1", 12)
	in := hdr(sha1, "") + "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +x @@ " + content + "\n"
	_, err := parseLog(newLogParser(strings.NewReader(in), 100))
	if err == nil || strings.Contains(err.Error(), "ghp_") {
		t.Errorf("error %v: want an error that does not quote the file's line", err)
	}
}

// checkAdditions checks what FuzzLogParser requires of any parse: every
// addition names its file, starts at a line >= 1, and holds something, and
// there are no more additions and commits than lines of input.
func checkAdditions(t *testing.T, commits []*commitDiff, inputLen int) {
	t.Helper()
	adds := 0
	for _, c := range commits {
		for _, a := range c.Adds {
			adds++
			if a.Path == "" || a.StartLine < 1 || len(a.Raw) == 0 {
				t.Fatalf("commit %q: bad addition {Path: %q, StartLine: %d, %d bytes}", c.SHA, a.Path, a.StartLine, len(a.Raw))
			}
		}
	}
	if adds > inputLen || len(commits) > inputLen+1 {
		t.Fatalf("%d commits and %d additions from %d bytes", len(commits), adds, inputLen)
	}
}

// FuzzLogParser: any input parses (or fails) without a panic, ends, and
// emits only well-formed additions; on every read path (whole reads, one
// byte at a time, half reads, an error with the last data; the default and
// a 16-byte buffer) and any line limit.
func FuzzLogParser(f *testing.F) {
	seeds := []string{
		"",
		"\x00",
		hdr(sha1, ""),
		hdr(sha1, "") + "\ndiff --git a/f b/f\n--- /dev/null\n+++ b/f\n@@ -0,0 +1,2 @@\n+a\n+b\n\\ No newline at end of file\n",
		hdr(sha3, sha1+" "+sha2) + "\ndiff --cc f\n--- a/f\n+++ b/f\n@@@ -1,2 -1,2 +1,4 @@@\n +x\n+ y\n++z\n--w\n",
		hdr(sha4, sha1+" "+sha2+" "+sha3) + "diff --cc f\n+++ b/f\n@@@@ -1 -1 -1 +1,2 @@@@\n+++n\n ++o\n",
		"diff --git a/f b/f\n+++ \"b/caf\\303\\251 \\\"q\\\"\"\t\n@@ -3 +3,2 @@ ctx +9\n-o\n+n\n+m\nBinary files a/x and b/x differ\n",
		"@@ -1 +1 @@\n+no diff line\n+++ b/f\n@@ -1 +5 @@\n x\n+y\n",
		hdr(sha1, "") + "diff --git a/f b/f\n+++ b/f\n@@ -1 +1 @@\n+" + strings.Repeat("long", 20) + "\n-" + strings.Repeat("gone", 20) + "\n",
	}
	if b, err := os.ReadFile("testdata/gitlog/history.log"); err == nil {
		seeds = append(seeds, string(b))
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint16(64), uint8(0))
		f.Add([]byte(s), uint16(8), uint8(5))
	}
	f.Fuzz(func(t *testing.T, data []byte, maxLine uint16, mode uint8) {
		var r io.Reader = bytes.NewReader(data)
		switch mode % 4 {
		case 1:
			r = iotest.OneByteReader(r)
		case 2:
			r = iotest.HalfReader(r)
		case 3:
			r = iotest.DataErrReader(r)
		}
		limit := int(maxLine)
		if mode&8 != 0 {
			limit = DefaultMaxFileSize
		}
		p := newLogParser(r, limit)
		if mode&4 != 0 {
			p = smallParser(r, limit)
		}
		type result struct {
			commits []*commitDiff
			err     error
		}
		done := make(chan result, 1)
		go func() {
			c, err := parseLog(p)
			done <- result{c, err}
		}()
		select {
		case res := <-done:
			checkAdditions(t, res.commits, len(data))
		case <-time.After(10 * time.Second):
			t.Fatalf("parse of %d bytes did not return", len(data))
		}
	})
}

// TestGitEnv: git gets git's variables and where to find programs and
// configuration, never passman's own (the master key, a token).
func TestGitEnv(t *testing.T) {
	t.Parallel()
	got := gitEnv([]string{"PATH=/usr/bin", "HOME=/home/u", "PASSMAN_MASTER_KEY=k", "PASSMAN_TOKEN=pmt_x", "GIT_INDEX_FILE=/r/.git/index.lock", "AWS_SECRET_ACCESS_KEY=s", "GIT_DIR=/r/.git", "XDG_CONFIG_HOME=/c"})
	want := []string{"PATH=/usr/bin", "HOME=/home/u", "GIT_INDEX_FILE=/r/.git/index.lock", "GIT_DIR=/r/.git", "XDG_CONFIG_HOME=/c"}
	if !slices.Equal(got, want) {
		t.Fatalf("gitEnv = %q, want %q", got, want)
	}
}
