package secret

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidatePath(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", MaxSegmentLen)
	deep := strings.Repeat("a/", MaxSegments-1) + "a"
	for name, tc := range map[string]struct {
		path string
		rule string // substring of the error; "" means valid
	}{
		"single segment":       {"token", ""},
		"nested":               {"prod/db/password", ""},
		"all allowed chars":    {"A-Z_a.z-0.9/x", ""},
		"max segment length":   {long, ""},
		"max depth":            {deep, ""},
		"dots inside segment":  {"a/..b/c", ""},
		"empty":                {"", "path is empty"},
		"leading slash":        {"/prod/db", "path must not start with '/'"},
		"trailing slash":       {"prod/db/", "path must not end with '/'"},
		"double slash":         {"prod//db", "segment 2 is empty"},
		"dot dot":              {"prod/../etc", `segment 2 is ".."`},
		"dot":                  {"./prod", `segment 1 is "."`},
		"too deep":             {deep + "/a", "17 segments, at most 16"},
		"segment too long":     {long + "a", "129 characters, at most 128"},
		"space":                {"prod/db password", `contains " "`},
		"NUL":                  {"prod/\x00db", "control character 0x00"},
		"newline":              {"prod\n/db", "control character 0x0a"},
		"DEL":                  {"prod/\x7f", "control character 0x7f"},
		"backslash":            {`prod\db`, `contains "\\"`},
		"unicode":              {"prod/dé", `contains "é"`},
		"only slash":           {"/", "must not start with '/'"},
		"percent encoding":     {"prod/%2e%2e", `contains "%"`},
		"colon":                {"prod:db", `contains ":"`},
		"tab in segment":       {"a\tb", "control character 0x09"},
		"invalid utf8":         {"a/\xff", `segment 2 contains`},
		"too deep and invalid": {strings.Repeat("x/", 20) + "x", "21 segments"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := ValidatePath(tc.path)
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("ValidatePath(%q) = %v, want nil", tc.path, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("ValidatePath(%q) = %v, want ErrInvalidPath", tc.path, err)
			}
			if !strings.Contains(err.Error(), tc.rule) {
				t.Fatalf("ValidatePath(%q) = %q, want it to name the rule %q", tc.path, err, tc.rule)
			}
		})
	}
}

func TestValidatePrefix(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "prod", "prod/", "prod/d"} {
		if err := ValidatePrefix(ok); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"/", "/prod", "prod//", "../x", "a b"} {
		if err := ValidatePrefix(bad); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ValidatePrefix(%q) = %v, want ErrInvalidPath", bad, err)
		}
	}
}

// FuzzValidatePath checks the parser against an independent statement of
// the rules, and that errors never echo control characters raw.
func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"a", "prod/db/password", "/x", "x/", "a//b", "..", "a/./b", "\x00", strings.Repeat("a/", 17), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		err := ValidatePath(p)
		if (err == nil) != reference(p) {
			t.Fatalf("ValidatePath(%q) = %v, reference says valid=%v", p, err, reference(p))
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("error %v does not wrap ErrInvalidPath", err)
			}
			msg := err.Error()
			for _, r := range msg {
				if r < 0x20 || r == 0x7f {
					t.Fatalf("error message carries raw control character %q", msg)
				}
			}
			if !utf8.ValidString(msg) {
				// %q quoting keeps messages printable even for invalid input.
				t.Fatalf("error message is not valid UTF-8: %q", msg)
			}
		}
	})
}

func reference(p string) bool {
	segs := strings.Split(p, "/")
	if p == "" || len(segs) > MaxSegments {
		return false
	}
	for _, s := range segs {
		if s == "" || s == "." || s == ".." || len(s) > MaxSegmentLen {
			return false
		}
		for _, c := range []byte(s) {
			if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", rune(c)) {
				return false
			}
		}
	}
	return true
}

// FuzzParseDuration checks that any accepted duration is non-negative and
// round-trips through its JSON form.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30d", "720h", "1h30m", "-1h", "9999999d", "1.5d", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("error %v is not ErrInvalidArgument", err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		}
		b, err := d.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back Duration
		if err := back.UnmarshalJSON(b); err != nil || back != d {
			t.Fatalf("%q: JSON round trip %s -> %v, %v", s, b, back, err)
		}
	})
}
