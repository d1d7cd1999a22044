package managed_test

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/scanner/managed"
	"github.com/passman-dev/passman/secret"
)

var (
	dbCur  = planted{"Qx7vK2mP9wL4nR8tZ3yB", "prod/db/password", 2, []secret.Stage{secret.StageCurrent}}
	dbPrev = planted{"Lm3nB8vC1xZ6qW9eR4tY", "prod/db/password", 1, []secret.Stage{secret.StagePrevious}}
	apiTok = planted{"tok8fJ2kL9mN3pQ5rS7uV1wX4yZ", "prod/api/token", 1, []secret.Stage{secret.StageCurrent}}
	// symVal is a generated value full of the symbols that delimit tokens.
	symVal = planted{"Zq7:x@k/P!e%r-(u)~", "prod/cache/password", 3, []secret.Stage{secret.StageCurrent}}
	// shared is one value stored under two paths: both are reported.
	sharedProd    = planted{"Sh4r3dV4lu3Xy9Kq", "prod/shared", 1, []secret.Stage{secret.StageCurrent}}
	sharedStaging = planted{"Sh4r3dV4lu3Xy9Kq", "staging/shared", 4, nil}
)

func testMatcher(tb testing.TB) harness {
	tb.Helper()
	return newHarness(tb, []planted{dbCur, dbPrev, apiTok, symVal, sharedProd, sharedStaging})
}

func at(line, col int, p planted) found {
	return found{Line: line, Column: col, Length: len(p.value), Secret: p.match()}
}

func TestFindPlanted(t *testing.T) {
	t.Parallel()
	m := testMatcher(t)
	cur, prev, tok, sym := dbCur.value, dbPrev.value, apiTok.value, symVal.value
	tests := map[string]struct {
		text string
		want []found
	}{
		"bare token":          {"password is " + cur + " ok\n", []found{at(1, 13, dbCur)}},
		"double quotes":       {`x := "` + cur + `"` + "\n", []found{at(1, 7, dbCur)}},
		"single quotes":       {"pw = '" + cur + "'\n", []found{at(1, 7, dbCur)}},
		"backticks":           {"s := `" + cur + "`", []found{at(1, 7, dbCur)}},
		"dotenv":              {"APP=1\nDB_PASSWORD=" + cur + "\nX=2\n", []found{at(2, 13, dbCur)}},
		"yaml":                {"db:\n  password: " + cur + "\n", []found{at(2, 13, dbCur)}},
		"json":                {`{"password":"` + cur + `"}`, []found{at(1, 14, dbCur)}},
		"postgres url":        {"DATABASE_URL=postgres://app:" + cur + "@db.internal:5432/app\n", []found{at(1, 29, dbCur)}},
		"query string":        {"curl https://api.example.com/v1?token=" + tok + "&x=1\n", []found{at(1, 39, apiTok)}},
		"bearer header":       {"GET / HTTP/1.1\r\nAuthorization: Bearer " + tok + "\r\n", []found{at(2, 23, apiTok)}},
		"symbols in url":      {"redis://default:" + sym + "@cache:6379/0", []found{at(1, 17, symVal)}},
		"symbols quoted":      {`pw: "` + sym + `"`, []found{at(1, 6, symVal)}},
		"symbols bare":        {sym, []found{at(1, 1, symVal)}},
		"two on one line":     {"A=" + cur + " B=" + tok, []found{at(1, 3, dbCur), at(1, 26, apiTok)}},
		"end without newline": {"line one\nsecret=" + cur, []found{at(2, 8, dbCur)}},
		"whole fragment":      {cur, []found{at(1, 1, dbCur)}},
		"crlf":                {"K=" + cur + "\r\nL=2\r\n", []found{at(1, 3, dbCur)}},
		"tab":                 {"\t\t" + cur + "\t", []found{at(1, 3, dbCur)}},
		"brackets":            {"f(" + cur + ") [" + tok + "] <" + cur + ">", []found{at(1, 3, dbCur), at(1, 26, apiTok), at(1, 56, dbCur)}},
		"nul terminated":      {"\x00\x01" + cur + "\x00", []found{at(1, 3, dbCur)}},
		"invalid utf-8 round": {"\xff\xfe\xfd " + cur + " \xc3\x28", []found{at(1, 5, dbCur)}},
		"same line twice":     {cur + "," + cur, []found{at(1, 1, dbCur), at(1, 22, dbCur)}},
		"previous and current": {"old=" + prev + " new=" + cur + "\n",
			[]found{at(1, 5, dbPrev), at(1, 30, dbCur)}},
		"shared value": {"v=" + sharedProd.value, []found{at(1, 3, sharedProd), at(1, 3, sharedStaging)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, m.find(t, []byte(tc.text))); diff != "" {
				t.Errorf("Find(%q) mismatch (-want +got):\n%s", tc.text, diff)
			}
		})
	}
}

func TestFindNearMisses(t *testing.T) {
	t.Parallel()
	m := testMatcher(t)
	cur, tok := dbCur.value, apiTok.value
	changed := []byte(cur)
	changed[7] ^= 1
	tests := map[string]string{
		"one byte changed":      "pw=" + string(changed) + "\n",
		"first byte changed":    "pw=" + "R" + cur[1:] + "\n",
		"prefix of longer":      "pw=" + cur + "x\n",
		"suffix of longer":      "pw=x" + cur + "\n",
		"glued to a word":       "password" + cur,
		"substring":             "pw=" + cur[1:len(cur)-1] + "\n",
		"substring indexed len": "pw=" + tok[:len(cur)] + "\n", // same length as an indexed value: hashed, no hit
		"lower case":            "pw=" + strings.ToLower(cur) + "\n",
		"upper case":            "pw=" + strings.ToUpper(cur) + "\n",
		"split across lines":    "pw=" + cur[:10] + "\n" + cur[10:] + "\n",
		"split by space":        "pw=" + cur[:10] + " " + cur[10:] + "\n",
		"json escaped":          `{"pw":"` + strings.ReplaceAll(symVal.value, "/", `\/`) + `"}`,
		"trailing period":       "the password is " + cur + ".", // documented limit
		"utf-8 prefix byte":     "\xc3" + cur,
	}
	for name, text := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := m.find(t, []byte(text)); len(got) != 0 {
				t.Errorf("Find(%q) = %+v, want no match", text, got)
			}
		})
	}
}

func TestFindHostile(t *testing.T) {
	t.Parallel()
	m := testMatcher(t)
	rng := rand.New(rand.NewChaCha8([32]byte{1}))

	// 10 MB of one line: printable ASCII including every delimiter, no newline.
	const printable = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
	long := make([]byte, 10<<20)
	for i := range long {
		long[i] = printable[rng.IntN(len(printable))]
	}
	binary := make([]byte, 1<<20)
	for i := range binary {
		binary[i] = byte(rng.Uint32())
	}
	longPlanted := append(append(bytes.Clone(long), '='), dbCur.value...)
	// A value after a NUL in binary is found, wherever the binary's '\n' bytes put it.
	head := binary[:4096]
	binPlanted := append(append(bytes.Clone(head), 0), apiTok.value...)
	binLine := bytes.Count(head, []byte("\n")) + 1
	binCol := len(head) + 1 - (bytes.LastIndexByte(head, '\n') + 1) + 1

	tests := map[string]struct {
		text []byte
		want []found
	}{
		"nil":                 {nil, nil},
		"empty":               {[]byte{}, nil},
		"only newlines":       {[]byte("\n\n\n"), nil},
		"only delimiters":     {[]byte(`"'=:@/?&,;([{<)]}>` + "\x00\x7f"), nil},
		"long line":           {long, nil},
		"long line planted":   {longPlanted, []found{at(1, len(long)+2, dbCur)}},
		"random binary":       {binary, nil},
		"nuls":                {make([]byte, 4096), nil},
		"invalid utf-8":       {[]byte("\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x90\x28\xbc"), nil},
		"binary then planted": {binPlanted, []found{at(binLine, binCol, apiTok)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, m.find(t, tc.text)); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLengths: the matcher hashes exactly the spans of the index's lengths
// (zero and negative ones from a sloppy Index ignored, duplicates
// collapsed), and an empty index matches nothing.
func TestLengths(t *testing.T) {
	t.Parallel()
	empty := newHarness(t, nil)
	if got := empty.find(t, []byte(dbCur.value)); got != nil {
		t.Errorf("empty index found %+v", got)
	}
	f := fakeIndex{lengths: []int{0, -3, 2, 4, 2}, values: []string{"x", "xy", "xyz", "xyzw"}}
	var got []string
	text := []byte("x=xy,xyz;xyzw")
	for _, m := range managed.New(f).Find(text) {
		off := m.Column - 1
		got = append(got, string(text[off:off+m.Length]))
	}
	if diff := cmp.Diff([]string{"xy", "xyzw"}, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

// fakeIndex makes candidates of values equal to one of values and reports
// whatever lengths it is given: the fuzzer uses short values that random
// input hits often.
type fakeIndex struct {
	lengths []int
	values  []string
}

func (f fakeIndex) Candidate(fp *[32]byte, v []byte) bool {
	*fp = sha256.Sum256(v)
	return slices.Contains(f.values, string(v))
}

func (f fakeIndex) Lengths() []int { return f.lengths }
