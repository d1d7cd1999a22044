package managed_test

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/scanner/managed"
)

// Short values, so random input hits them often.
var fuzzIndex = fakeIndex{lengths: []int{1, 2, 3, 8}, values: []string{"x", "ab", "a=b", "Zz9", "p@s:w/d)", "\xff\xfe"}}

func FuzzFind(f *testing.F) {
	for _, s := range []string{
		"", "x", "ab", "a=b", "x=ab\n", "Zz9 Zz9", "u:p@s:w/d)@h", "\x00ab\x00",
		"\xff\xfe", " \xff\xfe\n", `{"k":"ab"}`, "Bearer Zz9\r\n", "abx xab (x) [ab] <a=b>",
		"k: x\n  - ab\n", "?t=ab&u=x;v=Zz9",
	} {
		f.Add([]byte(s))
	}
	m := managed.New(fuzzIndex)
	f.Fuzz(func(t *testing.T, text []byte) {
		got := m.Find(text)
		if diff := cmp.Diff(naiveFind(fuzzIndex, text), got); diff != "" {
			t.Fatalf("Find(%q) differs from the reference (-want +got):\n%s", text, diff)
		}
		for _, mt := range got {
			off := offsetOf(text, mt.Line, mt.Column)
			if off < 0 || mt.Length < 1 || off+mt.Length > len(text) {
				t.Fatalf("Find(%q): %+v points outside the text", text, mt)
			}
			if tok := text[off : off+mt.Length]; sha256.Sum256(tok) != mt.Fingerprint {
				t.Fatalf("Find(%q): token %q at %d:%d does not have the match's fingerprint", text, tok, mt.Line, mt.Column)
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
func naiveFind(ix fakeIndex, text []byte) []managed.Match {
	const (
		open  = "'\"`=:@/?&,;([{<"
		close = open + ")]}>"
	)
	isSep := func(c byte) bool { return c == ' ' || c < 0x20 || c == 0x7f }
	var out []managed.Match
	for li, ln := range bytes.Split(text, []byte("\n")) {
		for p := range ln {
			if p > 0 && !isSep(ln[p-1]) && bytes.IndexByte([]byte(open), ln[p-1]) < 0 {
				continue
			}
			for _, l := range ix.lengths {
				e := p + l
				if e > len(ln) || slices.ContainsFunc(ln[p:e], isSep) {
					continue
				}
				if e < len(ln) && !isSep(ln[e]) && bytes.IndexByte([]byte(close), ln[e]) < 0 {
					continue
				}
				var fp [32]byte
				if ix.Candidate(&fp, ln[p:e]) {
					out = append(out, managed.Match{Line: li + 1, Column: p + 1, Length: l, Fingerprint: fp})
				}
			}
		}
	}
	return out
}
