package managed_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/passman-dev/passman/scanner/managed"
	"github.com/passman-dev/passman/secret"
)

// Short values, so random input hits them often, two of them one value.
var fuzzVersions = []planted{
	{"x", "fuzz/one", 1, []secret.Stage{secret.StageCurrent}},
	{"ab", "fuzz/two", 1, []secret.Stage{secret.StagePrevious}},
	{"ab", "fuzz/two-again", 7, nil},
	{"a=b", "fuzz/eq", 2, []secret.Stage{secret.StageCurrent}},
	{"Zz9", "fuzz/zz", 1, nil},
	{"p@s:w/d)", "fuzz/sym", 3, []secret.Stage{secret.StagePending}},
	{"\xff\xfe", "fuzz/bin", 1, nil},
}

func FuzzFind(f *testing.F) {
	for _, s := range []string{
		"", "x", "ab", "a=b", "x=ab\n", "Zz9 Zz9", "u:p@s:w/d)@h", "\x00ab\x00",
		"\xff\xfe", " \xff\xfe\n", `{"k":"ab"}`, "Bearer Zz9\r\n", "abx xab (x) [ab] <a=b>",
		"k: x\n  - ab\n", "?t=ab&u=x;v=Zz9",
	} {
		f.Add([]byte(s))
	}
	ix := buildIndex(f, fuzzVersions)
	m := managed.New(ix)
	f.Fuzz(func(t *testing.T, text []byte) {
		got := m.Find(text)
		if diff := cmp.Diff(naiveFind(ix, text), got); diff != "" {
			t.Fatalf("Find(%q) differs from the reference (-want +got):\n%s", text, diff)
		}
		for _, mt := range got {
			off := offsetOf(text, mt.Line, mt.Column)
			if off < 0 || mt.Length < 1 || off+mt.Length > len(text) {
				t.Fatalf("Find(%q): %+v points outside the text", text, mt)
			}
			found := ix.Lookup(text[off : off+mt.Length])
			if !slices.ContainsFunc(found, func(fm secret.FingerprintMatch) bool { return cmp.Equal(fm, mt.Secret) }) {
				t.Fatalf("Find(%q): token %q at %d:%d looks up as %+v, not %+v", text, text[off:off+mt.Length], mt.Line, mt.Column, found, mt.Secret)
			}
		}
	})
}

// offsetOf converts a 1-based line and byte column to an offset, -1 if the
// line does not exist.
func offsetOf(text []byte, line, col int) int {
	start := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(text[start:], '\n')
		if i < 0 {
			return -1
		}
		start += i + 1
	}
	return start + col - 1
}

// naiveFind is the package doc's rules written out as directly as possible,
// with its own copy of the delimiter sets, for the fuzzer to compare against.
func naiveFind(ix managed.Index, text []byte) []managed.Match {
	const (
		open  = "'\"`=:@/?&,;([{<"
		close = open + ")]}>"
	)
	isSep := func(c byte) bool { return c == ' ' || c < 0x20 || c == 0x7f }
	lengths := ix.Lengths()
	slices.Sort(lengths)
	var out []managed.Match
	for li, ln := range bytes.Split(text, []byte("\n")) {
		for p := range ln {
			if p > 0 && !isSep(ln[p-1]) && bytes.IndexByte([]byte(open), ln[p-1]) < 0 {
				continue
			}
			for _, l := range lengths {
				e := p + l
				if e > len(ln) || slices.ContainsFunc(ln[p:e], isSep) {
					continue
				}
				if e < len(ln) && !isSep(ln[e]) && bytes.IndexByte([]byte(close), ln[e]) < 0 {
					continue
				}
				for _, fm := range ix.Lookup(ln[p:e]) {
					out = append(out, managed.Match{Line: li + 1, Column: p + 1, Length: l, Secret: fm})
				}
			}
		}
	}
	return out
}
